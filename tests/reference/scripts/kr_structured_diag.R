suppressMessages({library(lme4); library(pbkrtest); library(jsonlite)})
fit <- lmer(Reaction ~ Days + (Days || Subject), sleepstudy, REML = TRUE,
            control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-4, rhoend = 1e-12, maxfun = 1e5)))
fit0 <- update(fit, . ~ . - Days)
kr <- KRmodcomp(fit, fit0)
Va <- vcovAdj(fit)
df_int <- Lb_ddf(matrix(c(1, 0), 1), vcov(fit), Va)
df_days <- Lb_ddf(matrix(c(0, 1), 1), vcov(fit), Va)
out <- list(call = "lmer(Reaction ~ Days + (Days || Subject), sleepstudy, REML = TRUE, bobyqa rhoend 1e-12); KRmodcomp(fit, update(fit, . ~ . - Days)); vcovAdj; Lb_ddf per coefficient",
            r_version = R.version.string, pbkrtest = as.character(packageVersion("pbkrtest")), lme4 = as.character(packageVersion("lme4")),
            theta = unname(getME(fit, "theta")), sigma = sigma(fit), beta = unname(fixef(fit)),
            F = kr$test["Ftest", "stat"], ndf = kr$test["Ftest", "ndf"], ddf = kr$test["Ftest", "ddf"],
            F_scaling = kr$test["Ftest", "F.scaling"], FstatU = kr$stats$FstatU,
            vcov_adj = unname(as.matrix(Va)), coef_ddf = c(df_int, df_days))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "kr_structured_diag.json")
