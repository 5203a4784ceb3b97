# glmmTMB 1.1.5's t_family() on sleepstudy from two starts (R 4.2.2, Debian bookworm). Run from
# the repository root:  Rscript tests/reference/scripts/glmmtmb_t_sleepstudy.R
# Writes tests/reference/glmmtmb_student_t_sleep_starts.json.
# glmmTMB's default start (psi = 0, nu = 1; theta = 0) ends on the nu -> infinity plateau
# (logLik -897.0393, the Gaussian ML limit); started at nu = 5 (psi = log 5) with the SD at
# its lme4 value it reaches the interior optimum. Both are tight refits.
suppressMessages({library(glmmTMB); library(jsonlite)})
sleep <- read.csv("mixedppl/datasets/data/sleepstudy.csv"); sleep$Subject <- factor(sleep$Subject)
tight <- glmmTMBControl(optCtrl = list(rel.tol = 1e-12, eval.max = 1e4, iter.max = 1e4))
summ <- function(fit, call_text) {
  cf <- summary(fit)$coefficients$cond
  se_full <- sqrt(diag(vcov(fit, full = TRUE)))
  list(call = call_text,
       fixef = list(names = rownames(cf), estimate = unname(cf[, 1]), se = unname(cf[, 2])),
       re_sd = unname(attr(VarCorr(fit)$cond$Subject, "stddev")),
       sigma = sigma(fit), logLik = as.numeric(logLik(fit)),
       psi = unname(fit$fit$par["psi"]), df = unname(exp(fit$fit$par["psi"])),
       disp = list(estimate = unname(fixef(fit)$disp), se = unname(se_full["d~(Intercept)"])),
       max_abs_gradient = max(abs(fit$sdr$gradient.fixed)),
       ranef_first5 = unname(ranef(fit)$cond$Subject[1:5, 1]))
}
c1 <- "glmmTMB(Reaction ~ Days + (1 | Subject), data = sleep, family = t_family(), control = tight)"
c2 <- paste0("glmmTMB(Reaction ~ Days + (1 | Subject), data = sleep, family = t_family(), ",
             "control = tight, start = list(psi = log(5), theta = log(37)))")
res <- list(package = "glmmTMB", version = as.character(packageVersion("glmmTMB")),
            default_start = summ(eval(parse(text = c1)), c1),
            start_nu5 = summ(eval(parse(text = c2)), c2))
write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
      "tests/reference/glmmtmb_student_t_sleep_starts.json")
