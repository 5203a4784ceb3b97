# coxme with a correlated random intercept and slope, (1 + x | g), Efron ties (issue 13).
# Data: 40 clusters x 6 rows simulated here (times rounded to 0.05, so events tie), written to
# tests/reference/coxme_slopes_data.csv; and survival's kidney with (1 + age | id).
# Per case: coxme's default fit and a tight refit (inner eps 1e-12, BFGS reltol 1e-12).
# at_fixed_variance is the tight refit itself (its variance parameters, β, log-likelihoods): coxme
# 2.2-22's vfixed / vinit cannot name the intercept variance of a (1 + x | g) term (coxmeFull's
# name list starts with "", so every name matches one position too far and coxme stops with
# "Variances must be >0").
# Run from the repository root: Rscript tests/reference/scripts/coxme_slopes.R
suppressPackageStartupMessages({library(survival); library(coxme); library(jsonlite)})
set.seed(20131)
G <- 40; m <- 6; n <- G * m
g <- rep(seq_len(G), each = m); x <- round(rnorm(n), 3); z <- rbinom(n, 1, 0.5)
S <- matrix(c(0.5, 0.3 * sqrt(0.5 * 0.3), 0.3 * sqrt(0.5 * 0.3), 0.3), 2)
b <- matrix(rnorm(2 * G), G) %*% chol(S)
hz <- exp(0.5 * x - 0.4 * z + b[g, 1] + b[g, 2] * x)
tt <- rexp(n, hz); cc <- rexp(n, 0.4)
sim <- data.frame(time = pmax(round(pmin(tt, cc) / 0.05) * 0.05, 0.05),
                  status = as.integer(tt <= cc), x = x, z = z, g = g)
write.csv(sim, "tests/reference/coxme_slopes_data.csv", row.names = FALSE)

record <- function(fit, group) {
  bb <- fixef(fit); v <- as.matrix(vcov(fit))
  vc <- VarCorr(fit)[[group]]
  re <- ranef(fit)[[group]]
  list(fixef = list(names = names(bb), estimate = unname(bb), se = sqrt(diag(v))),
       vcov = unname(v),
       random_variance = setNames(list(list(names = colnames(vc), variance = unname(diag(vc)),
                                            correlation = unname(vc[2, 1]))), group),
       loglik = list(null = unname(fit$loglik[1]), integrated = unname(fit$loglik[2]),
                     penalized = unname(fit$loglik[3])),
       ranef = setNames(list(list(levels = rownames(re), columns = colnames(re),
                                  value = unname(as.matrix(re)))), group),
       n_events = unname(fit$n[1]), n = unname(fit$n[2]))
}
tight_control <- coxme.control(eps = 1e-12, toler.chol = 1e-14,
                               optpar = list(method = "BFGS", control = list(reltol = 1e-12)))
one_case <- function(form, data, group, slope, label, csv) {
  default <- coxme(form, data = data, ties = "efron")
  tight <- coxme(form, data = data, ties = "efron", control = tight_control)
  vc <- VarCorr(tight)[[group]]
  c(list(package = "coxme", version = as.character(packageVersion("coxme")),
         survival_version = as.character(packageVersion("survival")),
         formula = paste(deparse(form), collapse = ""), ties = "efron", data_csv = csv,
         r_call = label),
    record(default, group),
    list(tight_refit = record(tight, group),
         at_fixed_variance = list(variance = unname(diag(vc)), correlation = unname(vc[2, 1]),
                                  fixef = unname(fixef(tight)),
                                  se = unname(sqrt(diag(as.matrix(vcov(tight))))),
                                  loglik_integrated = unname(tight$loglik[2]),
                                  loglik_penalized = unname(tight$loglik[3]),
                                  ranef = unname(as.matrix(ranef(tight)[[group]])))))
}
sim_out <- one_case(Surv(time, status) ~ x + z + (1 + x | g), sim, "g", "x",
                    "coxme(Surv(time, status) ~ x + z + (1 + x | g), data = sim, ties = 'efron')",
                    "coxme_slopes_data.csv")
kid_out <- one_case(Surv(time, status) ~ age + sex + (1 + age | id), kidney, "id", "age",
                    "coxme(Surv(time, status) ~ age + sex + (1 + age | id), data = survival::kidney)",
                    "data/kidney.csv")
writeLines(toJSON(sim_out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/coxme_slopes.json")
writeLines(toJSON(kid_out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/coxme_kidney_slopes.json")
