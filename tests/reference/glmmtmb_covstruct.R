# Reference fits for glmmTMB's structured random-effect covariances (issue 15, part 2):
# diag(), cs(), ar1(), toep() with glmmTMB 1.1.5 (R 4.2.2, Debian bookworm: r-cran-glmmtmb).
# Run from the repository root:
#   Rscript tests/reference/glmmtmb_covstruct.R
# Writes tests/reference/covstruct_longitudinal.csv (simulated below, once, with the seed) and
# tests/reference/glmmtmb_covstruct_<case>.json; each file holds the R call that made it.
# glmmTMB 1.1.5 has no homdiag (glmmTMB:::.valid_covstruct: diag us cs ar1 ou exp gau mat toep rr).
# All fits are tight refits (rel.tol = 1e-12).
suppressMessages({library(glmmTMB); library(lme4); library(jsonlite)})
dat <- "mixedppl/datasets/data"
tight <- glmmTMBControl(optCtrl = list(rel.tol = 1e-12, eval.max = 1e4, iter.max = 1e4))
tight_text <- "glmmTMBControl(optCtrl = list(rel.tol = 1e-12, eval.max = 1e4, iter.max = 1e4))"

# --- simulated longitudinal data: 40 subjects x 5 equally spaced times x 2 replicates ----------
# (replicates make the residual separable from toep()'s heterogeneous SDs: with one row per
# subject and time glmmTMB's toep fit stops with "infinite or missing values in 'x'")
csv <- "tests/reference/covstruct_longitudinal.csv"
if (!file.exists(csv)) {
  set.seed(20261202)
  n_sub <- 40; n_t <- 5; rho <- 0.6
  d <- expand.grid(rep = 1:2, time = 1:n_t, subject = sprintf("s%02d", 1:n_sub))
  d <- d[, c("subject", "time", "rep")]
  d$x <- round(rnorm(nrow(d)), 3)
  ar <- unlist(lapply(1:n_sub, function(i) as.numeric(arima.sim(list(ar = rho), n_t, sd = sqrt(1 - rho^2)))))
  b0 <- rnorm(n_sub, sd = 0.5)
  cell <- (as.integer(factor(d$subject)) - 1) * n_t + d$time
  d$y <- round(1 + 0.5 * d$x + b0[as.integer(factor(d$subject))] + 1.2 * ar[cell] + rnorm(nrow(d), sd = 0.6), 4)
  ar2 <- unlist(lapply(1:n_sub, function(i) as.numeric(arima.sim(list(ar = 0.7), n_t, sd = sqrt(1 - 0.49)))))
  d$count <- rpois(nrow(d), exp(0.8 + 0.3 * d$x + 0.6 * ar2[cell]))
  write.csv(d, csv, row.names = FALSE)
}
long <- read.csv(csv); long$subject <- factor(long$subject); long$times <- factor(long$time)
sleep <- read.csv(file.path(dat, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)

write_case <- function(res, case) {
  write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
        file.path("tests/reference", paste0("glmmtmb_covstruct_", case, ".json")))
}
tmb_case <- function(fit, case, call_text, data_note) {
  cf <- summary(fit)$coefficients
  vc <- VarCorr(fit)$cond
  res <- list(case = case, package = "glmmTMB",
              version = as.character(packageVersion("glmmTMB")), call = call_text,
              control = tight_text, data_note = data_note,
              family = family(fit)$family, link = family(fit)$link,
              reml = isTRUE(fit$modelInfo$REML),
              fixef = list(names = rownames(cf$cond), estimate = unname(cf$cond[, 1]),
                           se = unname(cf$cond[, 2])),
              re_sd = lapply(vc, function(v) unname(attr(v, "stddev"))),
              re_cor = lapply(vc, function(v) { r <- attr(v, "correlation");
                                               if (is.null(r)) list() else unname(r[lower.tri(r)]) }),
              sigma = sigma(fit), logLik = as.numeric(logLik(fit)),
              theta = unname(getME(fit, "theta")),
              max_abs_gradient = max(abs(fit$sdr$gradient.fixed)),
              ranef_first = lapply(ranef(fit)$cond, function(r) unname(as.numeric(unlist(r[1:3, , drop = FALSE])))),
              ranef_rows = lapply(ranef(fit)$cond, function(r) rownames(r)[1:3]),
              ranef_cols = lapply(ranef(fit)$cond, function(r) colnames(r)),
              fitted_first10 = unname(head(fitted(fit), 10)))
  write_case(res, case)
}
run <- function(call_text) eval(parse(text = call_text))

cases <- list(
  sleep_diag_ml = c("glmmTMB(Reaction ~ Days + diag(Days | Subject), data = sleep, control = tight)", "sleepstudy as bundled"),
  sleep_diag_reml = c("glmmTMB(Reaction ~ Days + diag(Days | Subject), data = sleep, REML = TRUE, control = tight)", "sleepstudy as bundled"),
  sleep_cs_ml = c("glmmTMB(Reaction ~ Days + cs(Days | Subject), data = sleep, control = tight)", "sleepstudy as bundled"),
  sleep_cs_reml = c("glmmTMB(Reaction ~ Days + cs(Days | Subject), data = sleep, REML = TRUE, control = tight)", "sleepstudy as bundled"),
  long_ar1_ml = c("glmmTMB(y ~ x + ar1(times + 0 | subject), data = long, control = tight)", "covstruct_longitudinal.csv (2 rows per subject and time); times = factor(time)"),
  long_ar1_reml = c("glmmTMB(y ~ x + ar1(times + 0 | subject), data = long, REML = TRUE, control = tight)", "covstruct_longitudinal.csv (2 rows per subject and time); times = factor(time)"),
  long_int_ar1_ml = c("glmmTMB(y ~ x + (1 | subject) + ar1(times + 0 | subject), data = long, control = tight)", "covstruct_longitudinal.csv (2 rows per subject and time); times = factor(time)"),
  long_cs_ml = c("glmmTMB(y ~ x + cs(times + 0 | subject), data = long, control = tight)", "covstruct_longitudinal.csv (2 rows per subject and time); times = factor(time)"),
  long_toep_ml = c("glmmTMB(y ~ x + toep(times + 0 | subject), data = long, control = tight)", "covstruct_longitudinal.csv (2 rows per subject and time); times = factor(time)"),
  long_toep_reml = c("glmmTMB(y ~ x + toep(times + 0 | subject), data = long, REML = TRUE, control = tight)", "covstruct_longitudinal.csv (2 rows per subject and time); times = factor(time)"),
  long_diag_ml = c("glmmTMB(y ~ x + diag(times + 0 | subject), data = long, control = tight)", "covstruct_longitudinal.csv (2 rows per subject and time); times = factor(time)"),
  poisson_ar1 = c("glmmTMB(count ~ x + ar1(times + 0 | subject), data = long, family = poisson, control = tight)", "covstruct_longitudinal.csv (2 rows per subject and time); times = factor(time)")
)
for (case in names(cases)) {
  fit <- tryCatch(run(cases[[case]][1]), error = function(e) { message(case, ": ", conditionMessage(e)); NULL })
  if (!is.null(fit)) { tmb_case(fit, case, cases[[case]][1], cases[[case]][2]); message(case, " ok") }
}
# lme4 cross-check: diag(Days | Subject) is lme4's (Days || Subject)
for (reml in c(TRUE, FALSE)) {
  call_text <- sprintf("lmer(Reaction ~ Days + (Days || Subject), data = sleep, REML = %s, control = lmerControl(optimizer = \"nloptwrap\", optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, maxeval = 1e5)))", reml)
  fit <- run(call_text)
  write_case(list(case = "sleep_uncorr_lme4", package = "lme4", version = as.character(packageVersion("lme4")),
                  call = call_text, reml = reml, fixef = list(names = names(fixef(fit)), estimate = unname(fixef(fit)),
                  se = unname(sqrt(diag(as.matrix(vcov(fit)))))), theta = unname(getME(fit, "theta")),
                  sigma = sigma(fit), logLik = as.numeric(logLik(fit))),
             paste0("sleep_uncorr_lme4_", if (reml) "reml" else "ml"))
}
