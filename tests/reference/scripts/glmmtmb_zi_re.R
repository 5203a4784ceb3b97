# Reference fits for random terms in glmmTMB's ziformula (issue 15, part B), glmmTMB 1.1.5,
# R 4.2 (Debian: r-cran-glmmtmb). Run from the repository root:
#   Rscript tests/reference/scripts/glmmtmb_zi_re.R
# Writes tests/reference/glmmtmb_zire_<case>.json; each file holds the R call that made it.
# Salamanders is mixedppl/datasets/data/salamanders.csv (exported by tests/reference/glmmtmb_zi_disp.R);
# the simulated cases carry their data in the JSON ("data"). Tight refits: rel.tol = 1e-14.
# glmmTMB 1.1.5 refuses random terms in dispformula ("no random effects allowed in dispersion
# term"): recorded in glmmtmb_zire_disp_refused.json.
suppressMessages({library(glmmTMB); library(jsonlite)})
data(Salamanders, package = "glmmTMB"); sal <- Salamanders
tight <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))
tight_text <- "glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))"

# simulated data (set.seed(1515)): 30 groups g of 6 rows; 12 groups h crossed with g; x ~ N(0, 1)
set.seed(1515)
G <- 30; m <- 6; n <- G * m
g <- factor(rep(sprintf("g%02d", 1:G), each = m)); h <- factor(sprintf("h%02d", sample(1:12, n, TRUE)))
x <- round(rnorm(n), 4)
bc <- rnorm(G, sd = 0.6)[as.integer(g)]; bz <- rnorm(12, sd = 0.9)[as.integer(h)]
bzg <- rnorm(G, sd = 1.5)[as.integer(g)]
sim <- data.frame(g = g, h = h, x = x)
mu <- exp(0.6 + 0.5 * x + bc)
sim$y_zip <- ifelse(runif(n) < plogis(-0.7 + 0.6 * x + bz), 0, rpois(n, mu))
sim$y_zig <- ifelse(runif(n) < plogis(-0.3 + bzg), 0, rpois(n, exp(1.2 + 0.4 * x)))

preds <- function(fit, type) tryCatch(unname(predict(fit, type = type)), error = function(e) NULL)
re_list <- function(r) lapply(r, function(d) list(levels = rownames(d), names = colnames(d),
                                                 values = unname(as.matrix(d))))
vc_list <- function(v) lapply(v, function(s) list(sd = unname(attr(s, "stddev")),
                                                 cor = unname(attr(s, "correlation"))))
case <- function(name, call_text, data_note, with_data = FALSE) {
  fit <- eval(parse(text = call_text))
  vf <- vcov(fit, full = TRUE); se_full <- sqrt(diag(vf))
  part <- function(est, prefix) if (length(est)) list(names = names(est), estimate = unname(est),
                                                       se = unname(se_full[paste0(prefix, names(est))]))
  vc <- VarCorr(fit)
  # how far R's optimum is from the stationary point: one Newton step on glmmTMB's own objective
  H <- optimHess(fit$fit$par, fit$obj$fn, fit$obj$gr); gr <- as.numeric(fit$obj$gr(fit$fit$par))
  res <- list(newton_step_max = max(abs(solve(H, gr))), case = name, package = "glmmTMB", version = as.character(packageVersion("glmmTMB")),
              call = call_text, control = tight_text, data_note = data_note,
              family = family(fit)$family, link = family(fit)$link,
              fixef = part(fixef(fit)$cond, ""), zi = part(fixef(fit)$zi, "zi~"),
              disp = part(fixef(fit)$disp, "d~"),
              varcorr_cond = vc_list(vc$cond), varcorr_zi = vc_list(vc$zi),
              theta_se = unname(se_full[grep("^theta_", names(se_full))]),
              theta_names = grep("^theta_", names(se_full), value = TRUE),
              sigma = sigma(fit), logLik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"),
              AIC = AIC(fit), nobs = nobs(fit),
              max_abs_gradient = max(abs(fit$sdr$gradient.fixed)),
              ranef_cond = re_list(ranef(fit)$cond), ranef_zi = re_list(ranef(fit)$zi),
              predict_response = preds(fit, "response"), predict_conditional = preds(fit, "conditional"),
              predict_zprob = preds(fit, "zprob"), predict_link = preds(fit, "link"),
              predict_zlink = preds(fit, "zlink"))
  if (with_data) res$data <- sim
  write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
        file.path("tests/reference", paste0("glmmtmb_zire_", name, ".json")))
  cat(name, "logLik", res$logLik, "grad", res$max_abs_gradient, "\n")
}
# ZINB with ziformula = ~mined + (1 | site) on Salamanders is not a reference: glmmTMB 1.1.5 stops
# there with "false convergence" and an NA logLik (the mined = "no" sites' zi effects are not
# identified: π ≈ 0 there); zi ~ mined + (1 | spp) and zi ~ 1 + (1 | site) converge.
cases <- list(
  zip_salamanders = "glmmTMB(count ~ mined + (1 | site), ziformula = ~mined + (1 | site), family = poisson, data = sal, control = tight)",
  zinb2_spp_salamanders = "glmmTMB(count ~ mined + (1 | site), ziformula = ~mined + (1 | spp), family = nbinom2, data = sal, control = tight)",
  zinb2_site_salamanders = "glmmTMB(count ~ mined + (1 | site), ziformula = ~1 + (1 | site), family = nbinom2, data = sal, control = tight)",
  zionly_salamanders = "glmmTMB(count ~ mined + spp, ziformula = ~mined + (1 | site), family = poisson, data = sal, control = tight)",
  # hurdles (truncated count part): nlminb ends these with "singular convergence (7)" at
  # rel.tol = 1e-14; newton_step_max (~1e-6) shows the optimum is converged
  hurdle_poisson_salamanders = "glmmTMB(count ~ mined + (1 | site), ziformula = ~mined + (1 | site), family = truncated_poisson, data = sal, control = tight)",
  hurdle_nbinom2_salamanders = "glmmTMB(count ~ mined + (1 | site), ziformula = ~mined + (1 | site), family = truncated_nbinom2, data = sal, control = tight)"
)
for (nm in names(cases)) case(nm, cases[[nm]], "glmmTMB's Salamanders")
sim_cases <- list(
  zip_crossed_sim = "glmmTMB(y_zip ~ x + (1 | g), ziformula = ~x + (1 | h), family = poisson, data = sim, control = tight)",
  zip_zionly_sim = "glmmTMB(y_zig ~ x, ziformula = ~1 + (1 | g), family = poisson, data = sim, control = tight)"
)
for (nm in names(sim_cases)) case(nm, sim_cases[[nm]], "simulated in this script (set.seed(1515)); the data are in 'data'", TRUE)
refused <- tryCatch({glmmTMB(count ~ mined + (1 | site), dispformula = ~mined + (1 | site), family = nbinom2, data = sal); "fitted"},
                    error = function(e) conditionMessage(e))
write(toJSON(list(call = "glmmTMB(count ~ mined + (1 | site), dispformula = ~mined + (1 | site), family = nbinom2, data = sal)",
                  version = as.character(packageVersion("glmmTMB")), error = refused), auto_unbox = TRUE, pretty = TRUE),
      "tests/reference/glmmtmb_zire_disp_refused.json")
