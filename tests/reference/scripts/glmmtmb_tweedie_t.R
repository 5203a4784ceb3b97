# Reference fits for glmmTMB's tweedie() and t_family() (issue 15), glmmTMB 1.1.5, R 4.2.2
# (Debian bookworm: r-cran-glmmtmb). Run from the repository root:
#   Rscript tests/reference/scripts/glmmtmb_tweedie_t.R
# writes tests/reference/glmmtmb_tw_<case>.json with the R call, the data (simulated here,
# set.seed(1515), rounded before fitting) and the fit: fixef of every part with SEs (the
# dispersion on glmmTMB's scale: betad = log phi for tweedie, log sigma for t), psi with its SE
# (tweedie: power = 1 + plogis(psi); t: df = exp(psi)), family_params(), the random-effect SD,
# logLik, predictions and the first BLUPs. Each model is fitted with glmmTMB's defaults and
# refitted tightly (rel.tol = 1e-14: "tight_refit"); the tests compare against the tight refit.
suppressMessages({library(glmmTMB); library(jsonlite)})
tight <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))
tight_text <- "glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))"

set.seed(1515)
G <- 30; m <- 8; g <- factor(rep(sprintf("g%02d", 1:G), each = m)); n <- G * m
sim <- data.frame(g = g, x = round(rnorm(n), 4))
b <- rnorm(G, sd = 0.6)[as.integer(g)]
# Tweedie, p = 1.5, phi = 1 (compound Poisson-Gamma); with a dispersion covariate for the
# second response: log phi = -0.2 + 0.5 x
rtweedie <- function(mu, phi, p) {
  lam <- mu^(2 - p) / (phi * (2 - p)); N <- rpois(length(mu), lam)
  y <- rgamma(length(mu), shape = pmax(N, 1) * (2 - p) / (p - 1), scale = phi * (p - 1) * mu^(p - 1))
  ifelse(N > 0, y, 0)
}
mu <- exp(0.4 + 0.5 * sim$x + b)
sim$y_tw <- round(rtweedie(mu, 1.0, 1.5), 6)
sim$y_twd <- round(rtweedie(mu, exp(-0.2 + 0.5 * sim$x), 1.4), 6)
# Student t, df = 4, sigma = 0.8
sim$y_t <- round(1 + 0.5 * sim$x + b + 0.8 * rt(n, df = 4), 6)
sim$y_td <- round(1 + 0.5 * sim$x + b + exp(-0.3 + 0.4 * sim$x) * rt(n, df = 4), 6)

preds <- function(fit, type) tryCatch(unname(head(predict(fit, type = type), 10)), error = function(e) NULL)
summarise <- function(fit) {
  cf <- summary(fit)$coefficients
  V <- fit$sdr$cov.fixed; se <- sqrt(diag(V)); pn <- names(fit$fit$par)
  vc <- VarCorr(fit)$cond
  list(fixef = list(names = rownames(cf$cond), estimate = unname(cf$cond[, 1]), se = unname(cf$cond[, 2])),
       disp = list(names = names(fixef(fit)$disp), estimate = unname(fixef(fit)$disp),
                   se = unname(se[pn == "betad"])),
       psi = list(estimate = unname(fit$fit$par[pn == "psi"]), se = unname(se[pn == "psi"])),
       theta = list(estimate = unname(fit$fit$par[pn == "theta"]), se = unname(se[pn == "theta"])),
       family_params = as.list(family_params(fit)),
       re_sd = lapply(vc, function(v) unname(attr(v, "stddev"))),
       sigma = sigma(fit), logLik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"),
       AIC = AIC(fit), nobs = nobs(fit),
       max_abs_gradient = max(abs(fit$sdr$gradient.fixed)),
       fitted_first10 = unname(head(fitted(fit), 10)),
       predict_link = preds(fit, "link"), predict_disp = preds(fit, "disp"),
       ranef_first5 = unname(head(ranef(fit)$cond[[1]][, 1], 5)))
}
case <- function(name, call_text) {
  fit <- eval(parse(text = call_text))
  tight_call <- sub(")$", ", control = tight)", call_text)
  refit <- eval(parse(text = tight_call))
  res <- c(list(case = name, package = "glmmTMB", version = as.character(packageVersion("glmmTMB")),
                call = call_text, data_note = "simulated in the script (set.seed(1515)); the data are in 'data'",
                family = family(fit)$family, link = family(fit)$link),
           list(default = summarise(fit)),
           list(tight_refit = c(list(call = tight_call, control = tight_text), summarise(refit))),
           list(data = sim))
  write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
        file.path("tests/reference", paste0("glmmtmb_tw_", name, ".json")))
  cat(name, "logLik", res$default$logLik, res$tight_refit$logLik, "grad", res$tight_refit$max_abs_gradient,
      "family_params", unlist(res$tight_refit$family_params), "\n")
}
cases <- list(
  tweedie_sim = "glmmTMB(y_tw ~ x + (1 | g), family = tweedie(), data = sim)",
  tweedie_disp_sim = "glmmTMB(y_twd ~ x + (1 | g), dispformula = ~x, family = tweedie(), data = sim)",
  t_sim = "glmmTMB(y_t ~ x + (1 | g), family = t_family(), data = sim)",
  t_disp_sim = "glmmTMB(y_td ~ x + (1 | g), dispformula = ~x, family = t_family(), data = sim)"
)
for (nm in names(cases)) case(nm, cases[[nm]])
