# lme4's anova() for non-nested and incomparable models (lme4, R 4.2.2). Run from the repository
# root:  Rscript tests/reference/scripts/inf_anova_nonnested.R
# Writes tests/reference/inf_anova_nonnested.json.
suppressMessages({library(lme4); library(jsonlite)})
dat <- "mixedppl/datasets/data"
sleep <- read.csv(file.path(dat, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)
tab <- function(a) list(models = rownames(a), npar = a$npar, AIC = a$AIC, BIC = a$BIC,
                        logLik = a$logLik, deviance = a$deviance, Chisq = a$Chisq, Df = a$Df,
                        `Pr(>Chisq)` = a[["Pr(>Chisq)"]])
run <- function(expr) {
  msgs <- character(0); warns <- character(0)
  res <- withCallingHandlers(
    tryCatch(tab(expr), error = function(e) list(error = conditionMessage(e))),
    message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") },
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  c(res, list(messages = msgs, warnings = warns))
}
f <- list(
  intercept = "Reaction ~ Days + (1 | Subject)",
  slope_only = "Reaction ~ Days + (0 + Days | Subject)",
  transformed = "Reaction ~ log(Days + 1) + I(Days^2) + (0 + Days | Subject)",
  log_response = "log(Reaction) ~ Days + (1 | Subject)",
  correlated = "Reaction ~ Days + (Days | Subject)"
)
m <- lapply(f, function(x) lmer(as.formula(x), data = sleep, REML = FALSE))
m_sub <- lmer(Reaction ~ Days + (1 | Subject), data = sleep[1:170, ], REML = FALSE)
out <- list(case = "inf_anova_nonnested", package = "lme4",
            version = as.character(packageVersion("lme4")),
            notes = c("all models fitted by ML (REML = FALSE) to sleepstudy; anova(m_a, m_b) as listed",
                      "lme4 orders by npar (stable), reports Chisq = 2*max(0, diff logLik) and Df = diff npar for consecutive rows, p = NA where Df = 0; it does not check nesting or the response"),
            formulas = f,
            comparisons = list(
              equal_npar_nonnested = c(list(args = c("intercept", "slope_only")),
                                       run(anova(m$intercept, m$slope_only))),
              equal_npar_reversed = c(list(args = c("slope_only", "intercept")),
                                      run(anova(m$slope_only, m$intercept))),
              nonnested_diff_npar = c(list(args = c("transformed", "intercept")),
                                      run(anova(m$transformed, m$intercept))),
              nested_three = c(list(args = c("correlated", "intercept", "slope_only")),
                               run(anova(m$correlated, m$intercept, m$slope_only))),
              different_response = c(list(args = c("intercept", "log_response")),
                                     run(anova(m$intercept, m$log_response))),
              different_nobs = c(list(args = c("intercept", "intercept on rows 1:170")),
                                 run(anova(m$intercept, m_sub)))))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
      "tests/reference/inf_anova_nonnested.json")
