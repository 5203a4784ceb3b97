# Reference fits for zero-inflation, hurdles and dispersion formulas (issue 15), glmmTMB 1.1.5,
# R 4.2.2 (Debian bookworm: r-cran-glmmtmb). Run from the repository root:
#   Rscript tests/reference/glmmtmb_zi_disp.R
# Exports glmmTMB's Salamanders and Owls to mixedppl/datasets/data and their factor levels to
# tests/reference/glmmtmb_zi_levels.json (merged by hand into
# mixedppl/datasets/data/factor_levels.json, the loader's level table), and writes
# tests/reference/glmmtmb_zi_<case>.json; each file holds the R call that made it. The simulated
# cases carry their data in the JSON ("data"). Tight refits: rel.tol = 1e-14.
suppressMessages({library(glmmTMB); library(jsonlite)})
dat <- "mixedppl/datasets/data"
data(Salamanders, package = "glmmTMB"); data(Owls, package = "glmmTMB")
write.csv(Salamanders, file.path(dat, "salamanders.csv"), row.names = FALSE)
write.csv(Owls, file.path(dat, "owls.csv"), row.names = FALSE)
levels_of <- function(d) lapply(Filter(is.factor, d), function(f) list(levels = levels(f), ordered = is.ordered(f)))
write(toJSON(list(salamanders = levels_of(Salamanders), owls = levels_of(Owls)), auto_unbox = TRUE, pretty = TRUE),
      "tests/reference/glmmtmb_zi_levels.json")
sal <- Salamanders; owls <- Owls
sleep <- read.csv(file.path(dat, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)

tight <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))
tight_text <- "glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))"

# simulated data (set.seed(15)): 40 groups of 8 rows, x ~ N(0, 1)
set.seed(15)
G <- 40; m <- 8; g <- factor(rep(sprintf("g%02d", 1:G), each = m)); x <- rnorm(G * m)
b <- rnorm(G, sd = 0.5)[as.integer(g)]
sim <- data.frame(g = g, x = round(x, 4))
mu <- exp(0.5 + 0.4 * sim$x + b)
sim$y_zinb <- ifelse(runif(G * m) < plogis(-1 + 0.8 * sim$x), 0, rnbinom(G * m, size = exp(0.3 - 0.5 * sim$x), mu = mu))
sim$y_nb <- rnbinom(G * m, size = exp(0.5 + 0.7 * sim$x), mu = mu)
sim$y_gamma <- round(rgamma(G * m, shape = exp(1 + 0.6 * sim$x), rate = exp(1 + 0.6 * sim$x) / exp(1 + 0.3 * sim$x + b)), 6)
eta_b <- plogis(0.2 + 0.5 * sim$x + b); prec <- exp(2 + 0.5 * sim$x)
sim$y_beta <- round(pmin(pmax(rbeta(G * m, eta_b * prec, (1 - eta_b) * prec), 1e-4), 1 - 1e-4), 6)
sim$n_bin <- 6
sim$y_bin <- ifelse(runif(G * m) < plogis(-0.8 + 0.6 * sim$x), 0, rbinom(G * m, 6, plogis(0.3 + 0.5 * sim$x + b)))

preds <- function(fit, type) tryCatch(unname(head(predict(fit, type = type), 10)), error = function(e) NULL)
case <- function(name, call_text, data_note, with_data = FALSE) {
  fit <- eval(parse(text = call_text))
  cf <- summary(fit)$coefficients
  vc <- VarCorr(fit)$cond
  se_full <- sqrt(diag(vcov(fit, full = TRUE)))
  part <- function(est, prefix) if (length(est)) list(names = names(est), estimate = unname(est),
                                                       se = unname(se_full[paste0(prefix, names(est))]))
  res <- list(case = name, package = "glmmTMB", version = as.character(packageVersion("glmmTMB")),
              call = call_text, control = tight_text, data_note = data_note,
              family = family(fit)$family, link = family(fit)$link,
              fixef = list(names = rownames(cf$cond), estimate = unname(cf$cond[, 1]), se = unname(cf$cond[, 2])),
              zi = part(fixef(fit)$zi, "zi~"), disp = part(fixef(fit)$disp, "d~"),
              re_sd = lapply(vc, function(v) unname(attr(v, "stddev"))),
              sigma = sigma(fit), logLik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"),
              AIC = AIC(fit), nobs = nobs(fit),
              max_abs_gradient = max(abs(fit$sdr$gradient.fixed)),
              fitted_first10 = unname(head(fitted(fit), 10)),
              predict_response = preds(fit, "response"), predict_conditional = preds(fit, "conditional"),
              predict_zprob = preds(fit, "zprob"), predict_link = preds(fit, "link"),
              predict_disp = preds(fit, "disp"),
              pearson_first10 = tryCatch(unname(head(residuals(fit, type = "pearson"), 10)),
                                         error = function(e) NULL),
              ranef_first5 = unname(head(ranef(fit)$cond[[1]][, 1], 5)))
  if (with_data) res$data <- sim
  write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
        file.path("tests/reference", paste0("glmmtmb_zi_", name, ".json")))
  cat(name, "logLik", res$logLik, "grad", res$max_abs_gradient, "\n")
}
cases <- list(
  zip_salamanders = c("glmmTMB(count ~ mined + (1 | site), ziformula = ~mined, family = poisson, data = sal, control = tight)", "glmmTMB's Salamanders"),
  zinb2_salamanders = c("glmmTMB(count ~ mined + (1 | site), ziformula = ~mined, family = nbinom2, data = sal, control = tight)", "glmmTMB's Salamanders"),
  hurdle_poisson_salamanders = c("glmmTMB(count ~ mined + (1 | site), ziformula = ~mined, family = truncated_poisson, data = sal, control = tight)", "glmmTMB's Salamanders"),
  hurdle_nbinom2_salamanders = c("glmmTMB(count ~ mined + (1 | site), ziformula = ~mined, family = truncated_nbinom2, data = sal, control = tight)", "glmmTMB's Salamanders"),
  nbinom1_owls = c("glmmTMB(SiblingNegotiation ~ FoodTreatment + offset(log(BroodSize)) + (1 | Nest), family = nbinom1, data = owls, control = tight)", "glmmTMB's Owls"),
  zinb1_owls = c("glmmTMB(SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest), ziformula = ~1, family = nbinom1, data = owls, control = tight)", "glmmTMB's Owls"),
  gaussian_disp_sleep = c("glmmTMB(Reaction ~ Days + (1 | Subject), dispformula = ~Days, family = gaussian, data = sleep, control = tight)", "sleepstudy as bundled"),
  nbinom2_disp_salamanders = c("glmmTMB(count ~ mined + (1 | site), dispformula = ~mined, family = nbinom2, data = sal, control = tight)", "glmmTMB's Salamanders")
)
for (nm in names(cases)) case(nm, cases[[nm]][1], cases[[nm]][2])
sim_cases <- list(
  zinb2_disp_sim = "glmmTMB(y_zinb ~ x + (1 | g), ziformula = ~x, dispformula = ~x, family = nbinom2, data = sim, control = tight)",
  nbinom2_disp_sim = "glmmTMB(y_nb ~ x + (1 | g), dispformula = ~x, family = nbinom2, data = sim, control = tight)",
  gamma_disp_sim = "glmmTMB(y_gamma ~ x + (1 | g), dispformula = ~x, family = Gamma(link = \"log\"), data = sim, control = tight)",
  beta_disp_sim = "glmmTMB(y_beta ~ x + (1 | g), dispformula = ~x, family = beta_family(), data = sim, control = tight)",
  zibinom_sim = "glmmTMB(cbind(y_bin, n_bin - y_bin) ~ x + (1 | g), ziformula = ~x, family = binomial, data = sim, control = tight)"
)
for (nm in names(sim_cases)) case(nm, sim_cases[[nm]], "simulated in this script (set.seed(15)); the data are in 'data'", TRUE)
