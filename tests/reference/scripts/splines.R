# R's splines::bs / ns bases for tests/spec/test_splines.py (R 4.x, package splines).
library(splines); library(jsonlite)
set.seed(1)
x <- round(c(rexp(40, 0.3), 0, 12.5), 4)
newx <- c(-1, 0, 3.3, 12.5, 20)
cases <- list(
  list(call = "bs(x)", f = function(x) bs(x)),
  list(call = "bs(x, df = 5)", f = function(x) bs(x, df = 5)),
  list(call = "bs(x, df = 6, degree = 2)", f = function(x) bs(x, df = 6, degree = 2)),
  list(call = "bs(x, knots = c(2, 5))", f = function(x) bs(x, knots = c(2, 5))),
  list(call = "bs(x, df = 4, intercept = TRUE)", f = function(x) bs(x, df = 4, intercept = TRUE)),
  list(call = "bs(x, degree = 1, knots = 3)", f = function(x) bs(x, degree = 1, knots = 3)),
  list(call = "ns(x)", f = function(x) ns(x)),
  list(call = "ns(x, df = 4)", f = function(x) ns(x, df = 4)),
  list(call = "ns(x, knots = c(1, 4, 8))", f = function(x) ns(x, knots = c(1, 4, 8))),
  list(call = "ns(x, df = 3, intercept = TRUE)", f = function(x) ns(x, df = 3, intercept = TRUE)),
  list(call = "ns(x, df = 3, Boundary.knots = c(0.5, 10))", f = function(x) ns(x, df = 3, Boundary.knots = c(0.5, 10)))
)
out <- list(x = x, newx = newx, cases = lapply(cases, function(cs) {
  b <- cs$f(x)
  list(call = cs$call, basis = unname(unclass(b)[, , drop = FALSE]),
       knots = unname(as.numeric(attr(b, "knots"))), boundary = unname(attr(b, "Boundary.knots")),
       predict = unname(unclass(suppressWarnings(predict(b, newx)))[, , drop = FALSE]))
}))
# A model with splines: lme4 on sleepstudy, to check the column names and the fit
library(lme4)
m <- lmer(Reaction ~ ns(Days, df = 3) + (1 | Subject), sleepstudy, REML = TRUE,
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-12)))
out$lmer_ns <- list(call = "lmer(Reaction ~ ns(Days, df = 3) + (1 | Subject), sleepstudy)",
  fixef = as.list(fixef(m)), logLik = as.numeric(logLik(m)), theta = getME(m, "theta"),
  predict_new = unname(predict(m, newdata = data.frame(Days = c(0.5, 9.5), Subject = "308"))))
m2 <- lmer(Reaction ~ bs(Days, df = 4) + (1 | Subject), sleepstudy, REML = TRUE,
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-12)))
out$lmer_bs <- list(call = "lmer(Reaction ~ bs(Days, df = 4) + (1 | Subject), sleepstudy)",
  fixef = as.list(fixef(m2)), logLik = as.numeric(logLik(m2)),
  predict_new = unname(predict(m2, newdata = data.frame(Days = c(0.5, 9.5), Subject = "308"))))
# Run from tests/reference/: Rscript scripts/splines.R
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, matrix = "rowmajor"), "splines.json")
