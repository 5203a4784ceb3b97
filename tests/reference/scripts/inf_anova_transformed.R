# lmerTest type III ANOVA tables for models with transformed variables and factor x numeric terms
# (lmerTest, pbkrtest, lme4; R 4.2.2). Run from the repository root:
#   Rscript tests/reference/scripts/inf_anova_transformed.R
# Writes tests/reference/inf_anova_transformed.json.
suppressMessages({library(lmerTest); library(jsonlite)})
dat <- "mixedppl/datasets/data"
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.02, rhoend = 1e-12,
                                                          maxfun = 1e5))
sleep <- read.csv(file.path(dat, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)
cake <- read.csv(file.path(dat, "cake.csv"))
cake$recipe <- factor(cake$recipe); cake$replicate <- factor(cake$replicate, levels = 1:15)
tab <- function(a) list(terms = rownames(a), `Sum Sq` = a[["Sum Sq"]], `Mean Sq` = a[["Mean Sq"]],
                        NumDF = a[["NumDF"]], DenDF = a[["DenDF"]], `F value` = a[["F value"]],
                        `Pr(>F)` = a[["Pr(>F)"]])
cases <- list(
  sleep_log_sq = list(data = "sleepstudy", formula = "Reaction ~ log(Days + 1) + I(Days^2) + (Days | Subject)"),
  sleep_logical_x_centred = list(data = "sleepstudy", formula = "Reaction ~ I(Days > 4) * scale(Days, scale = FALSE) + (1 | Subject)"),
  sleep_factor_x_log = list(data = "sleepstudy", formula = "Reaction ~ factor(Days > 2) * log(Days + 1) + (Days | Subject)"),
  sleep_poly = list(data = "sleepstudy", formula = "Reaction ~ poly(Days, 2) + log(Days + 2) + (Days | Subject)"),
  cake_recipe_x_temp = list(data = "cake", formula = "angle ~ recipe * temp + (1 | recipe:replicate)"),
  cake_recipe_x_logtemp = list(data = "cake", formula = "angle ~ recipe * log(temp) + (1 | recipe:replicate)"),
  cake_recipe_x_scaled_sq = list(data = "cake", formula = "angle ~ recipe * scale(temp) + I(scale(temp)^2) + (1 | recipe:replicate)")
)
out <- list(case = "inf_anova_transformed", package = "lmerTest",
            versions = list(lmerTest = as.character(packageVersion("lmerTest")),
                            lme4 = as.character(packageVersion("lme4")),
                            pbkrtest = as.character(packageVersion("pbkrtest"))),
            notes = c("anova(fit, type = 3) with ddf = 'Satterthwaite' and 'Kenward-Roger' on REML fits (bobyqa, rhoend 1e-12)",
                      "data: mixedppl/datasets/data/*.csv; cake$replicate factor with levels 1:15"),
            models = list())
for (nm in names(cases)) {
  cs <- cases[[nm]]
  d <- if (cs$data == "sleepstudy") sleep else cake
  res <- tryCatch({
    fit <- lmer(as.formula(cs$formula), data = d, REML = TRUE, control = tight)
    list(formula = cs$formula, data = cs$data, fixef = as.list(fixef(fit)),
         theta = unname(getME(fit, "theta")), sigma = sigma(fit),
         contrasts = lapply(lmerTest:::get_contrasts_type3(fit), function(L)
           list(rownames = rownames(L), colnames = colnames(L), L = unname(L))),
         anova_type3_satterthwaite = tab(anova(fit, type = 3, ddf = "Satterthwaite")),
         anova_type3_kenward_roger = tab(anova(fit, type = 3, ddf = "Kenward-Roger")))
  }, error = function(e) list(formula = cs$formula, data = cs$data, error = conditionMessage(e)))
  out$models[[nm]] <- res
  cat(nm, if (!is.null(res$error)) res$error else "ok", "\n")
}
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
      "tests/reference/inf_anova_transformed.json")
