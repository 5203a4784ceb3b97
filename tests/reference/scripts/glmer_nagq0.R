# Reference fits for glmer(..., nAGQ = 0) (lme4 1.1-31, R 4.2.2).
# Run from the repository root: Rscript tests/reference/scripts/glmer_nagq0.R
# Writes tests/reference/glmm_nagq0.json.
#
# nAGQ = 0: bobyqa over theta only; beta is estimated jointly with u inside PIRLS
# (pwrssUpdate with uOnly = FALSE). logLik = -devfun(theta_hat)/2 with
# devfun = ldL2 + |u|^2 + family aic (lme4's glmResp::Laplace); vcov = pp$unsc() (the PIRLS R_X,
# calc.derivs = FALSE: no Hessian).
suppressMessages({library(lme4); library(jsonlite)})
tight <- glmerControl(optCtrl = list(rhobeg = 1e-3, rhoend = 1e-12, maxfun = 1e5),
                      tolPwrss = 1e-12)
one <- function(fit) {
  re <- ranef(fit, condVar = TRUE)
  ranef_out <- lapply(names(re), function(g) {
    pv <- attr(re[[g]], "postVar")
    list(levels = rownames(re[[g]]), condval = re[[g]][, 1], condsd = sqrt(pv[1, 1, ]))
  })
  names(ranef_out) <- names(re)
  list(fixef = unname(fixef(fit)), theta = unname(getME(fit, "theta")),
       se = unname(sqrt(diag(as.matrix(vcov(fit))))),
       vcov = unname(as.matrix(vcov(fit))),
       logLik = as.numeric(logLik(fit)), deviance_summary = -2 * as.numeric(logLik(fit)),
       deviance_R = deviance(fit), AIC = AIC(fit), BIC = BIC(fit),
       devcomp = as.list(getME(fit, "devcomp")$cmp), feval = fit@optinfo$feval,
       ranef = ranef_out, fitted_first10 = unname(head(fitted(fit), 10)))
}
case <- function(formula, data, family, name) {
  f <- glmer(formula, data = data, family = family, nAGQ = 0)
  t <- glmer(formula, data = data, family = family, nAGQ = 0, control = tight)
  d <- one(f)
  list(case = name, call = deparse(f@call, width.cutoff = 500L),
       formula = deparse(formula, width.cutoff = 500L), family = family,
       fixef_names = names(fixef(f)), default = d, tight_refit = one(t),
       tight_control = "glmerControl(optCtrl = list(rhobeg = 1e-3, rhoend = 1e-12, maxfun = 1e5), tolPwrss = 1e-12)",
       logLik_minus_default = one(t)$logLik - d$logLik)
}
res <- list(
  package = "lme4", version = as.character(packageVersion("lme4")),
  notes = paste("logLik(fit) = -opt$fval/2 (ldL2 + sum(u^2) + family$aic, constants included);",
                "deviance(fit) is the conditional deviance-residual sum (resp$resDev());",
                "vcov(fit) = sigma^2 pp$unsc() = (R_X' R_X)^-1 from the final PIRLS decomposition"),
  cbpp = case(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, "binomial",
              "cbpp binomial nAGQ=0"),
  grouseticks = case(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION),
                     grouseticks, "poisson", "grouseticks poisson nAGQ=0"),
  generated = format(Sys.time(), tz = "UTC", usetz = TRUE))
write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/glmm_nagq0.json")
