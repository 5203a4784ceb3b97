# coxme on survival's kidney with missing values in a covariate (age), the cluster (id), the
# time and the status, dropped by coxme's default na.action (na.omit): the default fit, a tight
# refit (inner eps 1e-12, BFGS reltol 1e-12), the number of rows dropped and coxme's print.
# The holes (1-based rows of kidney): age at 4 and 30, id at 11, time at 50, status at 61.
# Run from the repository root: Rscript tests/reference/scripts/coxme_kidney_na.R
suppressPackageStartupMessages({library(survival); library(coxme); library(jsonlite)})
d <- kidney
d$age[c(4, 30)] <- NA; d$id[11] <- NA; d$time[50] <- NA; d$status[61] <- NA
form <- Surv(time, status) ~ age + sex + (1 | id)
record <- function(fit) {
  b <- fixef(fit); v <- as.matrix(vcov(fit))
  re <- ranef(fit)$id
  list(fixef = list(names = names(b), estimate = unname(b), se = sqrt(diag(v))),
       random_variance = list(id = unname(VarCorr(fit)$id)),
       loglik = list(null = unname(fit$loglik[1]), integrated = unname(fit$loglik[2]),
                     penalized = unname(fit$loglik[3])),
       ranef = list(id = list(levels = names(re), value = unname(re))),
       n_events = unname(fit$n[1]), n = unname(fit$n[2]))
}
default <- coxme(form, data = d, ties = "efron")
tight <- coxme(form, data = d, ties = "efron",
               control = coxme.control(eps = 1e-12, toler.chol = 1e-14,
                                       optpar = list(method = "BFGS",
                                                     control = list(reltol = 1e-12))))
out <- c(list(package = "coxme", version = as.character(packageVersion("coxme")),
              formula = "Surv(time, status) ~ age + sex + (1 | id)", ties = "efron",
              holes = list(age = c(4, 30), id = 11, time = 50, status = 61),
              r_call = paste("d <- survival::kidney; d$age[c(4, 30)] <- NA; d$id[11] <- NA;",
                             "d$time[50] <- NA; d$status[61] <- NA;",
                             "coxme(Surv(time, status) ~ age + sex + (1 | id), data = d)")),
         record(default),
         list(n_deleted = length(default$na.action),
              deleted_rows = unname(as.integer(default$na.action)),
              print = capture.output(print(default)),
              tight_refit = record(tight)))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/coxme_kidney_na.json")
