# Reference fits for the Gamma and Beta GLMM families (glmmTMB 1.1.5, R 4.2.2, Debian bookworm).
# Run from the repository root: Rscript tests/reference/scripts/glmmtmb_gamma_beta.R
# Writes tests/reference/glmm_gamma_sleepstudy.json and tests/reference/glmm_beta_cbpp.json.
suppressMessages({library(glmmTMB); library(jsonlite)})
dat <- "mixedppl/datasets/data"
tight <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14,
                                       x.tol = 1e-14))
out <- function(fit, case, formula, data_csv, family, data_note) {
  cf <- summary(fit)$coefficients$cond
  re <- ranef(fit, condVar = TRUE)$cond
  ranef_out <- lapply(names(re), function(g) {
    pv <- attr(re[[g]], "condVar")
    list(levels = rownames(re[[g]]), condval = re[[g]][, 1],
         condsd = sqrt(if (is.list(pv)) pv[[1]][1, 1, ] else pv[1, 1, ]))
  })
  names(ranef_out) <- names(re)
  vc <- VarCorr(fit)$cond
  res <- list(case = case, package = "glmmTMB",
              version = as.character(packageVersion("glmmTMB")),
              call = deparse(fit$call, width.cutoff = 500L), formula = formula,
              data_csv = data_csv, data_note = data_note, family = family,
              control = "glmmTMBControl(optCtrl = list(iter.max=1e4, eval.max=1e4, rel.tol=1e-14, x.tol=1e-14))",
              fixef = list(names = rownames(cf), estimate = unname(cf[, 1]), se = unname(cf[, 2])),
              re_sd = lapply(vc, function(v) unname(attr(v, "stddev"))),
              sigma = sigma(fit), logLik = as.numeric(logLik(fit)),
              max_abs_gradient = max(abs(fit$sdr$gradient.fixed)),
              ranef = ranef_out, fitted_first10 = unname(head(fitted(fit), 10)))
  write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
        file.path("tests/reference", paste0(case, ".json")))
}
sleep <- read.csv(file.path(dat, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)
g <- glmmTMB(Reaction ~ Days + (1 | Subject), data = sleep, family = Gamma(link = "log"),
             control = tight)
out(g, "glmm_gamma_sleepstudy", "Reaction ~ Days + (1 | Subject)", "sleepstudy.csv",
    "Gamma(log); sigma() = coefficient of variation (shape = 1/sigma^2)", "as bundled")
cbpp <- read.csv(file.path(dat, "cbpp.csv")); cbpp$herd <- factor(cbpp$herd, levels = 1:15)
cbpp$period <- factor(cbpp$period)
cbpp$prop <- (cbpp$incidence + 0.5) / (cbpp$size + 1)
b <- glmmTMB(prop ~ period + (1 | herd), data = cbpp, family = beta_family(), control = tight)
out(b, "glmm_beta_cbpp", "prop ~ period + (1 | herd)", "cbpp.csv",
    "beta_family(logit); sigma() = precision phi", "prop = (incidence + 0.5) / (size + 1)")
