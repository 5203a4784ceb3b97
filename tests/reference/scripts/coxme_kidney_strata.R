# coxme with strata() in the fixed part (separate baseline hazards per sex) on survival's kidney,
# Efron ties: coxme's default fit, a tight refit (inner eps 1e-12, BFGS reltol 1e-12), the fit at
# the tight variance held fixed (vfixed), and coxph(... + strata(sex)) for the no-frailty limit.
# Run from the repository root: Rscript tests/reference/scripts/coxme_kidney_strata.R
suppressPackageStartupMessages({library(survival); library(coxme); library(jsonlite)})
form <- Surv(time, status) ~ age + strata(sex) + (1 | id)
record <- function(fit) {
  b <- fixef(fit); v <- as.matrix(vcov(fit))
  re <- ranef(fit)$id
  list(fixef = list(names = names(b), estimate = unname(b), se = sqrt(diag(v))),
       vcov = unname(v), random_variance = list(id = unname(VarCorr(fit)$id)),
       loglik = list(null = unname(fit$loglik[1]), integrated = unname(fit$loglik[2]),
                     penalized = unname(fit$loglik[3])),
       ranef = list(id = list(levels = names(re), value = unname(re))),
       n_events = unname(fit$n[1]), n = unname(fit$n[2]))
}
default <- coxme(form, data = kidney, ties = "efron")
tight_control <- coxme.control(eps = 1e-12, toler.chol = 1e-14, optpar = list(method = "BFGS",
                                                          control = list(reltol = 1e-12)))
tight <- coxme(form, data = kidney, ties = "efron", control = tight_control)
v_tight <- unname(VarCorr(tight)$id)
fixed <- coxme(form, data = kidney, ties = "efron", vfixed = list(id = v_tight),
               control = coxme.control(eps = 1e-12, toler.chol = 1e-14))
ph <- coxph(Surv(time, status) ~ age + strata(sex), data = kidney, ties = "efron")
ph_breslow <- coxph(Surv(time, status) ~ age + strata(sex), data = kidney, ties = "breslow")
coxph_record <- function(f) list(estimate = unname(coef(f)), se = unname(sqrt(diag(vcov(f)))),
                                 loglik = unname(f$loglik))
out <- c(list(package = "coxme", version = as.character(packageVersion("coxme")),
              survival_version = as.character(packageVersion("survival")),
              formula = "Surv(time, status) ~ age + strata(sex) + (1 | id)", ties = "efron",
              data_csv = "data/kidney.csv",
              r_call = paste("coxme(Surv(time, status) ~ age + strata(sex) + (1 | id),",
                             "data = survival::kidney, ties = 'efron')")),
         record(default),
         list(tight_refit = record(tight),
              at_fixed_variance = list(variance = v_tight, fixef = unname(fixef(fixed)),
                                       se = unname(sqrt(diag(as.matrix(vcov(fixed))))),
                                       loglik_integrated = unname(fixed$loglik[2]),
                                       loglik_penalized = unname(fixed$loglik[3])),
              coxph = list(formula = "Surv(time, status) ~ age + strata(sex)",
                           efron = coxph_record(ph), breslow = coxph_record(ph_breslow))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/coxme_kidney_strata.json")
