# lme4 references for GLMM bootstrap intervals, hat values and deviance residuals (issue 14).
# R 4.2.2, lme4 1.1-31, boot. Run from the repository root:
#   Rscript tests/reference/scripts/glmm_boot_hat.R
# Writes tests/reference/glmm_boot_hat_cbpp.json. The fit is a TIGHT refit (bobyqa,
# rhoend = 1e-12, tolPwrss = 1e-12). bootMer draws differ from ours (another generator), so the
# bootstrap intervals are compared within Monte-Carlo error; the timing is bootMer's for
# nsim = 500 on this machine (recorded next to ours by the speed test).
suppressMessages({library(lme4); library(boot); library(jsonlite)})
dat <- "mixedppl/datasets/data"
cbpp <- read.csv(file.path(dat, "cbpp.csv"))
cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15)); cbpp$period <- factor(cbpp$period)
gctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                      tolPwrss = 1e-12)
call_fit <- "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, control = gctrl)"
g <- eval(parse(text = call_fit))
FUN <- function(m) c(sd = sqrt(unlist(VarCorr(m))), fixef(m))
call_boot <- "bootMer(g, FUN, nsim = 500, seed = 1, type = 'parametric', use.u = FALSE)"
elapsed <- system.time(bb <- eval(parse(text = call_boot)))[["elapsed"]]
ci <- t(sapply(seq_along(bb$t0), function(i)
  boot.ci(bb, type = "perc", index = i, conf = 0.95)$percent[4:5]))
out <- list(
  call_fit = call_fit, call_boot = call_boot,
  theta = unname(getME(g, "theta")), beta = unname(fixef(g)),
  hatvalues = unname(hatvalues(g)),
  residuals_deviance = unname(residuals(g, type = "deviance")),
  residuals_pearson = unname(residuals(g, type = "pearson")),
  boot_names = c("sd_(Intercept)|herd", names(fixef(g))),
  boot_percentile = unname(ci), boot_mean = unname(colMeans(bb$t)),
  boot_sd = unname(apply(bb$t, 2, sd)), boot_failed = sum(!is.finite(bb$t[, 1])),
  bootmer_seconds_nsim500 = elapsed)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/glmm_boot_hat_cbpp.json")
