# Profile-likelihood interval of the frailty SD in coxme on survival's kidney,
# Surv(time, status) ~ age + sex + (1 | id), Efron ties. coxme has no profile method: the
# variance is held fixed (vfixed=) and β re-fitted tightly at each value; the integrated
# log-likelihood ℓ_I(v) is then root-found (uniroot, tol 1e-12) for 2[ℓ̂ − ℓ_I(v)] = χ²₁(0.95)
# on each side of the tight optimum, and the ends reported on the SD scale (√v). A grid of
# (v, ℓ_I(v)) is saved too. Run from the repository root:
#   Rscript tests/reference/scripts/coxme_kidney_profile.R
suppressPackageStartupMessages({library(survival); library(coxme); library(jsonlite)})
form <- Surv(time, status) ~ age + sex + (1 | id)
ctl <- coxme.control(eps = 1e-12, toler.chol = 1e-14,
                     optpar = list(method = "BFGS", control = list(reltol = 1e-12)))
tight <- coxme(form, data = kidney, ties = "efron", control = ctl)
ll_at <- function(v) {
  f <- coxme(form, data = kidney, ties = "efron", vfixed = list(id = v), control = ctl)
  unname(f$loglik[2])
}
# the optimum of the one-dimensional profile, polished
opt <- optimize(function(s) -ll_at(s^2), c(0.3, 1.0), tol = 1e-10)
s_hat <- opt$minimum; ll_hat <- -opt$objective
cut <- qchisq(0.95, 1)
excess <- function(s) 2 * (ll_hat - ll_at(s^2)) - cut
lower <- if (excess(1e-4) > 0) uniroot(excess, c(1e-4, s_hat), tol = 1e-12)$root else 0
upper <- uniroot(excess, c(s_hat, 3), tol = 1e-12)$root
grid <- seq(0.05, 1.6, by = 0.05)
out <- list(package = "coxme", version = as.character(packageVersion("coxme")),
            formula = "Surv(time, status) ~ age + sex + (1 | id)", ties = "efron",
            r_call = paste("coxme(Surv(time, status) ~ age + sex + (1 | id), data = survival::kidney,",
                           "ties = 'efron', vfixed = list(id = v), control = tight); uniroot on",
                           "2 * (ll_hat - loglik[2]) - qchisq(0.95, 1) over sd = sqrt(v)"),
            level = 0.95,
            tight_refit = list(variance = unname(VarCorr(tight)$id),
                               loglik_integrated = unname(tight$loglik[2])),
            profile_optimum = list(sd = s_hat, loglik_integrated = ll_hat),
            interval = list(name = "sd_(Intercept)|id", lower = lower, upper = upper),
            check = list(excess_lower = if (lower > 0) excess(lower) else NA,
                         excess_upper = excess(upper)),
            grid = list(sd = grid, loglik_integrated = sapply(grid, function(s) ll_at(s^2))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/coxme_kidney_profile.json")
