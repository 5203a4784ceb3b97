# Root-found profile-likelihood interval ends (no grid, no spline) for a CLMM (ordinal 2022.11.16,
# clmm2 with sdFixed / an offset: ordinal's clmm has no profile method, and profile.clmm2
# profiles only the random-effect SD on a grid, whose spline-interpolated ends are stored too)
# and for the NB2 and Beta GLMMs (glmmTMB 1.1.5, one parameter held by `map`). R 4.2.2.
# Each end x solves zeta(x) = sign(x - x_hat) sqrt(2 (logLik_hat - logLik(x))) = -/+ qnorm(0.975),
# logLik(x) the fit's log-likelihood re-maximised over every other parameter, by uniroot
# (tol 1e-10) from the estimate to 6 Wald SEs out.
# Run from the repository root:  Rscript tests/reference/scripts/profile_exact.R
# Writes tests/reference/profile_exact_glmm_clmm.json.
suppressMessages({library(ordinal); library(glmmTMB); library(jsonlite)})
dat <- "mixedppl/datasets/data"
z <- qnorm(0.975)
root_ends <- function(loglik_at, hat, se, ll_hat, search_lo = hat - 6 * se, bound = NA) {
  # The lower end is searched down to `search_lo`; where zeta has not reached -qnorm(0.975)
  # there, the lower end is the parameter's bound (0 for an sd, -Inf for a log sd).
  zeta <- function(x) sign(x - hat) * sqrt(max(2 * (ll_hat - loglik_at(x)), 0))
  lo <- if (zeta(search_lo) + z < 0) {
    uniroot(function(x) zeta(x) + z, c(search_lo, hat - 1e-6 * se), tol = 1e-10)$root
  } else if (!is.na(bound)) bound else stop("no lower end above ", search_lo)
  c(lo, uniroot(function(x) zeta(x) - z, c(hat + 1e-6 * se, hat + 6 * se), tol = 1e-10)$root)
}

# --- CLMM: wine ------------------------------------------------------------------------------
wine <- read.csv(file.path(dat, "wine.csv"))
wine$rating <- factor(wine$rating, ordered = TRUE); wine$temp <- factor(wine$temp)
wine$contact <- factor(wine$contact); wine$judge <- factor(wine$judge)
wine$tw <- as.numeric(wine$temp == "warm"); wine$cy <- as.numeric(wine$contact == "yes")
ctrl <- clmm2.control(method = "ucminf", grtol = 1e-10, xtol = 1e-14)
o2 <- clmm2(rating ~ temp + contact, random = judge, data = wine, Hess = TRUE, nAGQ = 1,
            control = ctrl)
ll_hat <- o2$logLik
se <- sqrt(diag(vcov(o2)))
sd_ll <- function(s) update(o2, Hess = FALSE, sdFixed = s)$logLik
beta_ll <- function(name) function(b) {
  d <- wine
  if (name == "tempwarm") {
    d$off <- b * d$tw
    fit <- clmm2(rating ~ contact + offset(off), random = judge, data = d, nAGQ = 1, control = ctrl)
  } else {
    d$off <- b * d$cy
    fit <- clmm2(rating ~ temp + offset(off), random = judge, data = d, nAGQ = 1, control = ctrl)
  }
  fit$logLik
}
clmm_ci <- list(
  `sd_(Intercept)|judge` = root_ends(sd_ll, o2$stDev, o2$stDev * se[[length(se)]], ll_hat,
                                      search_lo = 1e-4, bound = 0),
  tempwarm = root_ends(beta_ll("tempwarm"), o2$beta[["tempwarm"]], se[["tempwarm"]], ll_hat),
  contactyes = root_ends(beta_ll("contactyes"), o2$beta[["contactyes"]], se[["contactyes"]], ll_hat))
pr <- profile(o2, range = c(0.1, 4), nSteps = 50, trace = 0)
clmm_out <- list(
  call = "clmm2(rating ~ temp + contact, random = judge, data = wine, Hess = TRUE, nAGQ = 1, control = clmm2.control(method = 'ucminf', grtol = 1e-10, xtol = 1e-14))",
  logLik = ll_hat, stDev = unname(o2$stDev), beta = unname(o2$beta),
  exact_profile_ci = clmm_ci,
  profile_clmm2_ci = list(call = "confint(profile(o2, range = c(0.1, 4), nSteps = 50))",
                          stDev = unname(confint(pr)[1, ])))

# --- glmmTMB: NB2 grouseticks, Beta cbpp ------------------------------------------------------
tight <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14,
                                       x.tol = 1e-14))
tmb_ci <- function(fit, data) {
  par <- fit$fit$par
  ll_hat <- as.numeric(logLik(fit))
  V <- vcov(fit, full = TRUE)
  nb <- length(fixef(fit)$cond)
  pfix <- list(beta = unname(fixef(fit)$cond), betad = unname(fixef(fit)$disp),
               theta = unname(getME(fit, "theta")))
  refit_ll <- function(which, k, x) {
    start <- pfix; start[[which]][k] <- x
    map <- list(); m <- seq_along(pfix[[which]]); m[k] <- NA; map[[which]] <- factor(m)
    f <- update(fit, start = start, map = map, control = tight)
    as.numeric(logLik(f))
  }
  out <- list()
  sdev <- sqrt(diag(V))
  # the SD (glmmTMB's theta = log sd): ends on the log scale, reported as sd
  th <- pfix$theta[1]; se_th <- sdev[length(sdev)]
  out[["sd"]] <- exp(root_ends(function(x) refit_ll("theta", 1, x), th, se_th, ll_hat,
                                search_lo = th - 40 * se_th, bound = -Inf))
  ld <- pfix$betad[1]; se_ld <- sdev[nb + 1]
  out[["dispersion"]] <- exp(root_ends(function(x) refit_ll("betad", 1, x), ld, se_ld, ll_hat))
  for (k in seq_len(nb)) {
    out[[names(fixef(fit)$cond)[k]]] <- root_ends(function(x) refit_ll("beta", k, x),
                                                  pfix$beta[k], sdev[k], ll_hat)
  }
  list(call = deparse(fit$call, width.cutoff = 500L), logLik = ll_hat,
       fixef = pfix$beta, log_dispersion = ld, log_sd = th, exact_profile_ci = out)
}
grouse <- read.csv(file.path(dat, "grouseticks.csv"))
for (v in c("YEAR", "LOCATION", "BROOD")) grouse[[v]] <- factor(grouse[[v]])
nb <- glmmTMB(TICKS ~ YEAR + (1 | LOCATION), data = grouse, family = nbinom2, control = tight)
cbpp <- read.csv(file.path(dat, "cbpp.csv")); cbpp$herd <- factor(cbpp$herd, levels = 1:15)
cbpp$period <- factor(cbpp$period)
cbpp$prop <- (cbpp$incidence + 0.5) / (cbpp$size + 1)
bt <- glmmTMB(prop ~ period + (1 | herd), data = cbpp, family = beta_family(), control = tight)
res <- list(case = "profile_exact_glmm_clmm",
            versions = list(ordinal = as.character(packageVersion("ordinal")),
                            glmmTMB = as.character(packageVersion("glmmTMB")),
                            R = R.version.string),
            level = 0.95, clmm_wine = clmm_out,
            nbinom2_grouse = tmb_ci(nb, grouse), beta_cbpp = tmb_ci(bt, cbpp))
write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
      "tests/reference/profile_exact_glmm_clmm.json")
