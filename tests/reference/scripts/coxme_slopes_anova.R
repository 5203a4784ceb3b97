# coxme's anova(fit1, fit2) between (1 | g) and (1 + x | g) on the simulated slopes data
# (tests/reference/coxme_slopes_data.csv, written by coxme_slopes.R), Efron ties: each model's
# default fit and tight refit (inner eps 1e-12, BFGS reltol 1e-12), and anova() of both pairs.
# Run from the repository root: Rscript tests/reference/scripts/coxme_slopes_anova.R
suppressPackageStartupMessages({library(survival); library(coxme); library(jsonlite)})
sim <- read.csv("tests/reference/coxme_slopes_data.csv")
tight_control <- coxme.control(eps = 1e-12, toler.chol = 1e-14,
                               optpar = list(method = "BFGS", control = list(reltol = 1e-12)))
f1 <- Surv(time, status) ~ x + z + (1 | g)
f2 <- Surv(time, status) ~ x + z + (1 + x | g)
# anova.coxmelist deparses each fit's call: the formulas are written out in the calls
fits <- list(default = list(coxme(Surv(time, status) ~ x + z + (1 | g), data = sim),
                            coxme(Surv(time, status) ~ x + z + (1 + x | g), data = sim)),
             tight = list(coxme(Surv(time, status) ~ x + z + (1 | g), data = sim,
                                control = tight_control),
                          coxme(Surv(time, status) ~ x + z + (1 + x | g), data = sim,
                                control = tight_control)))
one <- function(p) {
  a <- anova(p[[1]], p[[2]])
  list(loglik = unname(a$loglik), chisq = unname(a$Chisq[2]), df = unname(a$Df[2]),
       p = unname(a[["P(>|Chi|)"]][2]),
       integrated = c(unname(p[[1]]$loglik[2]), unname(p[[2]]$loglik[2])),
       print = capture.output(print(a)))
}
out <- list(package = "coxme", version = as.character(packageVersion("coxme")),
            formulas = c(paste(deparse(f1), collapse = ""), paste(deparse(f2), collapse = "")),
            ties = "efron", data_csv = "coxme_slopes_data.csv",
            r_call = paste("anova(coxme(Surv(time, status) ~ x + z + (1 | g), sim),",
                           "coxme(Surv(time, status) ~ x + z + (1 + x | g), sim))"),
            default = one(fits$default), tight_refit = one(fits$tight))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/coxme_slopes_anova.json")
