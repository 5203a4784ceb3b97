# broom.mixed / broom references for mixedppl's tidy() and glance() (issue 18).
# R 4.2.2, lme4, lmerTest 3.1-3, ordinal 2022.11.16, broom.mixed 0.2.9.4, broom (Debian bookworm).
# Run from the repository root:  Rscript tests/reference/scripts/broom_tidy.R
# Writes tests/reference/broom_tidy.json: per case the call, tidy(fit, conf.int = TRUE) (Wald
# intervals; NA for ran_pars, as broom.mixed's default) and glance(fit), column by column.
# Every model is a TIGHT refit (bobyqa, rhoend = 1e-12; glmer also tolPwrss = 1e-12; clmm
# nlminb rel.tol = 1e-12), so that the references are the optimum, not R's stopping point.
suppressMessages({library(lme4); library(lmerTest); library(ordinal); library(broom.mixed)
                  library(broom); library(jsonlite)})
dat <- "mixedppl/datasets/data"
sleep <- read.csv(file.path(dat, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)
pastes <- read.csv(file.path(dat, "pastes.csv"))
pastes$batch <- factor(pastes$batch); pastes$cask <- factor(pastes$cask)
pen <- read.csv(file.path(dat, "penicillin.csv"))
pen$plate <- factor(pen$plate); pen$sample <- factor(pen$sample)
cake <- read.csv(file.path(dat, "cake.csv"))
cake$recipe <- factor(cake$recipe); cake$replicate <- factor(cake$replicate)
cbpp <- read.csv(file.path(dat, "cbpp.csv"))
cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15)); cbpp$period <- factor(cbpp$period)
wine <- read.csv(file.path(dat, "wine.csv"))
wine$rating <- factor(wine$rating, ordered = TRUE); wine$temp <- factor(wine$temp)
wine$contact <- factor(wine$contact); wine$judge <- factor(wine$judge)

lctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
gctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                      tolPwrss = 1e-12)
cctrl <- clmm.control(method = "nlminb", rel.tol = 1e-12)

frame <- function(d) lapply(as.data.frame(d), function(v)
  if (is.factor(v) || is.character(v)) as.character(v) else as.numeric(v))
case <- function(kind, formula, call_text) {
  fit <- eval(parse(text = call_text))
  list(kind = kind, formula = formula, call = call_text,
       tidy = frame(tidy(fit, conf.int = TRUE)), glance = frame(glance(fit)))
}
out <- list(
  sleepstudy_reml = case("lmer", "Reaction ~ Days + (Days | Subject)",
    "lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleep, control = lctrl)"),
  sleepstudy_ml = case("lmer", "Reaction ~ Days + (Days | Subject)",
    "lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE, control = lctrl)"),
  sleepstudy_uncorr = case("lmer", "Reaction ~ Days + (Days || Subject)",
    "lmerTest::lmer(Reaction ~ Days + (Days || Subject), sleep, control = lctrl)"),
  pastes = case("lmer", "strength ~ 1 + (1 | batch/cask)",
    "lmerTest::lmer(strength ~ 1 + (1 | batch/cask), pastes, control = lctrl)"),
  penicillin = case("lmer", "diameter ~ 1 + (1 | plate) + (1 | sample)",
    "lmerTest::lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen, control = lctrl)"),
  cake_3x3 = case("lmer", "angle ~ temp + (1 + recipe | replicate)",
    "lmerTest::lmer(angle ~ temp + (1 + recipe | replicate), cake, control = lctrl)"),
  cbpp = case("glmer", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
    "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, control = gctrl)"),
  wine = case("clmm", "rating ~ temp + contact + (1 | judge)",
    "clmm(rating ~ temp + contact + (1 | judge), data = wine, control = cctrl)"))
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/broom_tidy.json")
