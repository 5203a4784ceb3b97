# emmeans / lmerTest references for mixedppl's marginal means, contrasts, Wald tests and type II
# ANOVA (issue 14). R 4.2.2, lme4, lmerTest 3.1-3, pbkrtest 0.5.2, emmeans 1.8.4, ordinal 2022.11.16.
# Run from the repository root:  Rscript tests/reference/scripts/emmeans.R
# Writes tests/reference/emmeans_lmm.json, emmeans_glmm.json, emmeans_clmm.json.
# Every model is a TIGHT refit (bobyqa, rhoend = 1e-12; glmer also tolPwrss = 1e-12; clmm
# nlminb rel.tol = 1e-12), so that the references are the optimum, not R's stopping point.
suppressMessages({library(lme4); library(lmerTest); library(emmeans); library(ordinal)
                  library(jsonlite)})
dat <- "mixedppl/datasets/data"
cake <- read.csv(file.path(dat, "cake.csv"))
cake$recipe <- factor(cake$recipe); cake$replicate <- factor(cake$replicate)
cake$temperature <- factor(cake$temperature, ordered = TRUE)
sleep <- read.csv(file.path(dat, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)
cbpp <- read.csv(file.path(dat, "cbpp.csv"))
cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15)); cbpp$period <- factor(cbpp$period)
wine <- read.csv(file.path(dat, "wine.csv"))
wine$rating <- factor(wine$rating, ordered = TRUE); wine$temp <- factor(wine$temp)
wine$contact <- factor(wine$contact); wine$judge <- factor(wine$judge)

lctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
gctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                      tolPwrss = 1e-12)
emm_options(pbkrtest.limit = 1e5, lmerTest.limit = 1e5)

em <- function(call_text) {
  x <- eval(parse(text = call_text))
  d <- as.data.frame(x)
  list(call = call_text, table = lapply(d, function(v) if (is.factor(v)) as.character(v) else v))
}
an <- function(call_text) {
  a <- eval(parse(text = call_text))
  list(call = call_text, terms = rownames(a), `Sum Sq` = a[["Sum Sq"]], `Mean Sq` = a[["Mean Sq"]],
       NumDF = a$NumDF, DenDF = a$DenDF, `F value` = a[["F value"]], `Pr(>F)` = a[["Pr(>F)"]])
}

cake_fit <- lmer(angle ~ recipe * temperature + (1 | recipe:replicate), data = cake, REML = TRUE,
                 control = lctrl)
cake_add <- lmer(angle ~ recipe + temperature + (1 | recipe:replicate), data = cake, REML = TRUE,
                 control = lctrl)
cake_num <- lmer(angle ~ recipe * temp + (1 | recipe:replicate), data = cake, REML = TRUE,
                 control = lctrl)
sleep_fit <- lmer(Reaction ~ Days + (Days | Subject), data = sleep, REML = TRUE, control = lctrl)
L2 <- rbind(c(0, 1, 0, rep(0, 15)), c(0, 0, 1, rep(0, 15)))
lmm <- list(
  case = "emmeans_lmm",
  versions = list(emmeans = as.character(packageVersion("emmeans")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  pbkrtest = as.character(packageVersion("pbkrtest"))),
  models = list(
    cake_fit = list(formula = "angle ~ recipe * temperature + (1 | recipe:replicate)",
                    call = "lmer(angle ~ recipe * temperature + (1 | recipe:replicate), data = cake, REML = TRUE, control = lctrl)",
                    fixef = unname(fixef(cake_fit))),
    cake_add = list(formula = "angle ~ recipe + temperature + (1 | recipe:replicate)",
                    fixef = unname(fixef(cake_add))),
    cake_num = list(formula = "angle ~ recipe * temp + (1 | recipe:replicate)",
                    fixef = unname(fixef(cake_num))),
    sleep_fit = list(formula = "Reaction ~ Days + (Days | Subject)", fixef = unname(fixef(sleep_fit)))),
  control = "lctrl <- lmerControl(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e5))",
  emmeans = list(
    recipe_kr = em("emmeans(cake_fit, 'recipe')"),
    recipe_satt = em("emmeans(cake_fit, 'recipe', lmer.df = 'satterthwaite')"),
    temperature_by_recipe = em("emmeans(cake_fit, 'temperature', by = 'recipe')"),
    cells = em("emmeans(cake_fit, c('recipe', 'temperature'))"),
    add_temperature = em("emmeans(cake_add, 'temperature', lmer.df = 'satterthwaite')"),
    num_recipe = em("emmeans(cake_num, 'recipe')"),
    num_recipe_at = em("emmeans(cake_num, 'recipe', at = list(temp = 200))"),
    sleep_days_at = em("emmeans(sleep_fit, 'Days', at = list(Days = c(0, 4.5, 9)))"),
    sleep_days_at_satt = em("emmeans(sleep_fit, 'Days', at = list(Days = c(0, 4.5, 9)), lmer.df = 'satterthwaite')")),
  contrasts = list(
    recipe_pairwise_tukey = em("pairs(emmeans(cake_fit, 'recipe'))"),
    recipe_pairwise_satt = em("pairs(emmeans(cake_fit, 'recipe', lmer.df = 'satterthwaite'))"),
    recipe_pairwise_holm = em("pairs(emmeans(cake_fit, 'recipe'), adjust = 'holm')"),
    recipe_pairwise_bonferroni = em("pairs(emmeans(cake_fit, 'recipe'), adjust = 'bonferroni')"),
    recipe_trt_vs_ctrl = em("contrast(emmeans(cake_fit, 'recipe'), 'trt.vs.ctrl')"),
    temperature_poly = em("contrast(emmeans(cake_fit, 'temperature'), 'poly')"),
    temperature_pairwise_by_recipe = em("pairs(emmeans(cake_fit, 'temperature', by = 'recipe'))"),
    recipe_custom = em("contrast(emmeans(cake_fit, 'recipe'), list(AvsBC = c(1, -0.5, -0.5)))")),
  contest = list(
    sleep_days = c(list(L = c(0, 1)), an("contest(sleep_fit, c(0, 1), joint = TRUE)")),
    sleep_days_rhs10 = c(list(L = c(0, 1), rhs = 10),
                         an("contest(sleep_fit, c(0, 1), rhs = 10, joint = TRUE)")),
    sleep_days_kr = c(list(L = c(0, 1)),
                      an("contest(sleep_fit, c(0, 1), joint = TRUE, ddf = 'Kenward-Roger')")),
    cake_recipe = c(list(L = L2), an("contest(cake_fit, L2, joint = TRUE)")),
    cake_recipe_kr = c(list(L = L2), an("contest(cake_fit, L2, joint = TRUE, ddf = 'Kenward-Roger')"))),
  anova_type2 = list(
    cake_satt = an("anova(cake_fit, type = 2)"),
    cake_kr = an("anova(cake_fit, type = 2, ddf = 'Kenward-Roger')"),
    cake_add_satt = an("anova(cake_add, type = 2)"),
    cake_num_satt = an("anova(cake_num, type = 2)"),
    cake_num_type3 = an("anova(cake_num, type = 3)")))
write(toJSON(lmm, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
      "tests/reference/emmeans_lmm.json")

g <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
           family = binomial, control = gctrl)
glmm <- list(
  case = "emmeans_glmm", versions = list(emmeans = as.character(packageVersion("emmeans"))),
  model = list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
               call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial, control = gctrl)",
               control = "glmerControl(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e5), tolPwrss = 1e-12)",
               fixef = unname(fixef(g)), se = unname(sqrt(diag(as.matrix(vcov(g)))))),
  emmeans = list(
    period_link = em("emmeans(g, 'period')"),
    period_response = em("emmeans(g, 'period', type = 'response')")),
  contrasts = list(
    period_pairwise = em("pairs(emmeans(g, 'period'))"),
    period_trt_vs_ctrl_holm = em("contrast(emmeans(g, 'period'), 'trt.vs.ctrl', adjust = 'holm')"),
    period_poly = em("contrast(emmeans(g, 'period'), 'poly')")))
write(toJSON(glmm, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
      "tests/reference/emmeans_glmm.json")

o <- clmm(rating ~ temp + contact + (1 | judge), data = wine, link = "logit", nAGQ = 1L,
          control = clmm.control(method = "nlminb", rel.tol = 1e-12, x.tol = 1e-12,
                                 eval.max = 1e4, iter.max = 1e4, gradTol = 1e-10))
o_default <- clmm(rating ~ temp + contact + (1 | judge), data = wine, link = "logit", nAGQ = 1L)
clmm_ref <- list(
  case = "emmeans_clmm", versions = list(emmeans = as.character(packageVersion("emmeans")),
                                         ordinal = as.character(packageVersion("ordinal"))),
  model = list(formula = "rating ~ temp + contact + (1 | judge)",
               call = "clmm(rating ~ temp + contact + (1 | judge), data = wine, link = 'logit', nAGQ = 1L, control = clmm.control(method = 'nlminb', rel.tol = 1e-12, x.tol = 1e-12, eval.max = 1e4, iter.max = 1e4, gradTol = 1e-10))",
               alpha = unname(o$alpha), beta = unname(o$beta)),
  emmeans = list(
    temp_latent = em("emmeans(o, 'temp')"),
    temp_by_contact = em("emmeans(o, 'temp', by = 'contact')"),
    temp_by_contact_default_fit = em("emmeans(o_default, 'temp', by = 'contact')")),
  contrasts = list(
    temp_pairwise = em("pairs(emmeans(o, 'temp'))"),
    cells_pairwise = em("pairs(emmeans(o, c('temp', 'contact')))"),
    cells_pairwise_default_fit = em("pairs(emmeans(o_default, c('temp', 'contact')))")),
  note = paste("ordinal's SEs come from its numerical Hessian, which moves with the fit's",
               "stopping point: mixedppl's agree with the default fit's to 1e-3 and with the",
               "tight refit's to 2e-2 (tests/parity/test_clmm.py); estimates from the tight",
               "refit, SEs from the *_default_fit entries"))
write(toJSON(clmm_ref, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
      "tests/reference/emmeans_clmm.json")
