# R's printed summaries of tight refits, for tests/results/test_r_layout.py: the same digits
# and layout line by line. Run from tests/reference/: Rscript scripts/r_print.R
suppressMessages({library(lmerTest); library(ordinal)})
options(width = 80)
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5))
gtight <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                       optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5))
dir.create("r_print", showWarnings = FALSE)  # tests/reference/r_print/<case>.txt
out <- function(name, x) writeLines(capture.output(print(summary(x))), file.path("r_print", paste0(name, ".txt")))
out("sleepstudy", lmer(Reaction ~ Days + (Days | Subject), sleepstudy, control = tight))
out("sleepstudy_ml", lmer(Reaction ~ Days + I(Days^2) + (Days || Subject), sleepstudy, REML = FALSE, control = tight))
out("penicillin", lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin, control = tight))
out("cbpp", glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, control = gtight))
out("wine", clmm(rating ~ temp + contact + (1 | judge), data = wine,
                 control = clmm.control(method = "nlminb", gradTol = 1e-10, innerCtrl = "noWarn")))
out("wine_agq", clmm(rating ~ temp * contact + (1 | judge), data = wine, nAGQ = 5,
                     control = clmm.control(method = "nlminb", gradTol = 1e-10, innerCtrl = "noWarn")))
