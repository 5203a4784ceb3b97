# References for CLMM predict(se_fit=True) and GLMM glance()$deviance (issues 14 and 18).
# R 4.2.2, lme4, ordinal 2022.11.16, broom.mixed 0.2.9.4 (Debian bookworm).
# Run from the repository root:  Rscript tests/reference/scripts/clm_predict_glmer_deviance.R
# Writes tests/reference/clm_predict_glmer_deviance.json:
# - "clm": a fixed-effects-only clm on wine (ordinal has no predict() for clmm), its alpha, beta,
#   vcov (alpha then beta) and predict(fit, newdata, type = "prob", se.fit = TRUE,
#   interval = TRUE) on four rows without the response (one row per level each).
# - "deviance": per glmer case deviance(fit) (the conditional deviance, sum of unit deviances at
#   the modes) and broom.mixed's glance(fit)$deviance, on tight refits.
suppressMessages({library(lme4); library(ordinal); library(broom.mixed); library(jsonlite)})
dat <- "mixedppl/datasets/data"
cbpp <- read.csv(file.path(dat, "cbpp.csv"))
cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15)); cbpp$period <- factor(cbpp$period)
wine <- read.csv(file.path(dat, "wine.csv"))
wine$rating <- factor(wine$rating, ordered = TRUE); wine$temp <- factor(wine$temp)
wine$contact <- factor(wine$contact)
gctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                      tolPwrss = 1e-12)

fit <- clm(rating ~ temp + contact, data = wine, control = clm.control(gradTol = 1e-10))
new <- data.frame(temp = factor(c("cold", "warm", "cold", "warm"), levels = levels(wine$temp)),
                  contact = factor(c("no", "no", "yes", "yes"), levels = levels(wine$contact)))
pr <- predict(fit, newdata = new, type = "prob", se.fit = TRUE, interval = TRUE)
clm_ref <- list(call = "clm(rating ~ temp + contact, wine); predict(fit, new, type = 'prob', se.fit = TRUE, interval = TRUE)",
                newdata = lapply(new, as.character), alpha = unname(fit$alpha),
                beta = unname(fit$beta), vcov = unname(vcov(fit)),
                fit = unname(pr$fit), se_fit = unname(pr$se.fit),
                lwr = unname(pr$lwr), upr = unname(pr$upr))

cases <- list(
  binomial_cbpp = list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                       family = "binomial"),
  poisson_cbpp = list(formula = "incidence ~ period + (1 | herd)", family = "poisson"))
dev_ref <- lapply(cases, function(cs) {
  g <- glmer(as.formula(cs$formula), cbpp, family = cs$family, control = gctrl)
  list(formula = cs$formula, family = cs$family,
       call = sprintf("glmer(%s, cbpp, %s, control = gctrl)", cs$formula, cs$family),
       deviance = deviance(g), glance_deviance = glance(g)$deviance,
       logLik = as.numeric(logLik(g)))
})
writeLines(toJSON(list(clm = clm_ref, deviance = dev_ref), digits = NA, auto_unbox = TRUE,
                  pretty = TRUE, matrix = "rowmajor"),
           "tests/reference/clm_predict_glmer_deviance.json")
