# emmeans references for contrasts on the response scale (ratios of means for log links, odds
# ratios for logit: emmeans' type = "response" on a contrast) and method = "revpairwise"
# (issue 14). R 4.2.2, lme4, emmeans 1.8.4. Run from the repository root:
#   Rscript tests/reference/scripts/emmeans_response.R
# Writes tests/reference/emmeans_response.json. Tight refits, as tests/reference/scripts/emmeans.R.
suppressMessages({library(lme4); library(emmeans); library(jsonlite)})
dat <- "mixedppl/datasets/data"
cake <- read.csv(file.path(dat, "cake.csv"))
cake$recipe <- factor(cake$recipe); cake$replicate <- factor(cake$replicate)
cake$temperature <- factor(cake$temperature, ordered = TRUE)
cbpp <- read.csv(file.path(dat, "cbpp.csv"))
cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15)); cbpp$period <- factor(cbpp$period)
grouse <- read.csv(file.path(dat, "grouseticks.csv"))
for (v in c("YEAR", "LOCATION", "BROOD")) grouse[[v]] <- factor(grouse[[v]])
lctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
gctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                      tolPwrss = 1e-12)
emm_options(pbkrtest.limit = 1e5, lmerTest.limit = 1e5)
em <- function(call_text) {
  d <- as.data.frame(eval(parse(text = call_text)))
  list(call = call_text, table = lapply(d, function(v) if (is.factor(v)) as.character(v) else v))
}
cake_fit <- lmer(angle ~ recipe * temperature + (1 | recipe:replicate), data = cake, REML = TRUE,
                 control = lctrl)
g <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
           family = binomial, control = gctrl)
gp <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
            family = binomial(link = "probit"), control = gctrl)
p <- glmer(TICKS ~ YEAR + (1 | BROOD), data = grouse, family = poisson, control = gctrl)
res <- list(
  case = "emmeans_response",
  versions = list(emmeans = as.character(packageVersion("emmeans")),
                  lme4 = as.character(packageVersion("lme4"))),
  models = list(
    cake_fit = list(formula = "angle ~ recipe * temperature + (1 | recipe:replicate)",
                    fixef = unname(fixef(cake_fit))),
    cbpp_logit = list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                      family = "binomial", fixef = unname(fixef(g))),
    cbpp_probit = list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                       family = "binomial(probit)", fixef = unname(fixef(gp))),
    grouse_poisson = list(formula = "TICKS ~ YEAR + (1 | BROOD)", family = "poisson",
                          fixef = unname(fixef(p)))),
  control = "glmerControl(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e5), tolPwrss = 1e-12)",
  contrasts = list(
    cake_revpairwise = em("contrast(emmeans(cake_fit, 'recipe'), 'revpairwise')"),
    cake_revpairwise_by = em("contrast(emmeans(cake_fit, 'temperature', by = 'recipe'), 'revpairwise')"),
    cbpp_revpairwise_link = em("contrast(emmeans(g, 'period'), 'revpairwise')"),
    cbpp_pairwise_response = em("pairs(emmeans(g, 'period'), type = 'response')"),
    cbpp_revpairwise_response = em("contrast(emmeans(g, 'period'), 'revpairwise', type = 'response')"),
    cbpp_trt_vs_ctrl_response = em("contrast(emmeans(g, 'period'), 'trt.vs.ctrl', type = 'response')"),
    cbpp_emmeans_response_pairs = em("pairs(emmeans(g, 'period', type = 'response'))"),
    cbpp_probit_pairwise_response = em("pairs(emmeans(gp, 'period'), type = 'response')"),
    grouse_pairwise_response = em("pairs(emmeans(p, 'YEAR'), type = 'response')"),
    grouse_revpairwise_response_holm = em("contrast(emmeans(p, 'YEAR'), 'revpairwise', type = 'response', adjust = 'holm')")))
write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
      "tests/reference/emmeans_response.json")
