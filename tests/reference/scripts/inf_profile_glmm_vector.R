# Profile-likelihood CIs of a binomial GLMM with a correlated vector random-effect term
# (lme4, minqa; R 4.2.2): lme4's confint(method = "profile") and the same intervals located by
# root-finding on the Laplace deviance with PIRLS converged (tolPwrss = 1e-12).
# Run from the repository root:  Rscript tests/reference/scripts/inf_profile_glmm_vector.R
# Writes tests/reference/inf_profile_glmm_vector.json.
suppressMessages({library(lme4); library(minqa); library(jsonlite)})
dat <- "mixedppl/datasets/data"
cbpp <- read.csv(file.path(dat, "cbpp.csv"))
cbpp$herd <- factor(cbpp$herd, levels = 1:15); cbpp$period <- factor(cbpp$period)
cbpp$x <- as.numeric(cbpp$period == "1")
form <- cbind(incidence, size - incidence) ~ period + (1 + x | herd)
ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.02, rhoend = 1e-12,
                                                          maxfun = 1e5), tolPwrss = 1e-12)
g <- glmer(form, data = cbpp, family = binomial, control = ctrl)
msgs <- character(0); warns <- character(0)
ci <- withCallingHandlers(confint(g, method = "profile", oldNames = FALSE),
  message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") },
  warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })

devfun <- getME(g, "devfun")           # Laplace deviance of c(theta, beta)
# getME() rebuilds devfun with the default tolPwrss = 1e-7 whatever the fit's control said: at
# that tolerance PIRLS stops early far from the optimum (log|L|^2 off by ~1e-3 at the period2
# profile's upper end), so converge it fully here
environment(devfun)$tolPwrss <- 1e-12
theta_of <- function(z) {              # z = (sd1, cor, sd2, beta...) -> theta (lower Cholesky)
  c(z[1], z[2] * z[3], z[3] * sqrt(max(1 - z[2]^2, 0)))
}
dev_z <- function(z) devfun(c(theta_of(z), z[-(1:3)]))
lower <- c(0, -1, 0, rep(-Inf, 4)); upper <- c(Inf, 1, Inf, rep(Inf, 4))
z_hat <- c(attr(VarCorr(g)$herd, "stddev")[1], attr(VarCorr(g)$herd, "correlation")[2, 1],
           attr(VarCorr(g)$herd, "stddev")[2], fixef(g))
# polish the optimum in z
sc <- pmax(abs(z_hat), 0.1)
opt <- bobyqa(z_hat / sc, function(u) dev_z(u * sc), lower = lower / sc, upper = upper / sc,
              control = list(rhobeg = 0.02, rhoend = 1e-12, maxfun = 1e5))
z_hat <- opt$par * sc; d_min <- opt$fval
prof_dev <- function(k, x, start) {
  free <- setdiff(seq_along(z_hat), k)
  f <- function(u) { z <- numeric(length(z_hat)); z[k] <- x; z[free] <- u * sc[free]; dev_z(z) }
  best <- NULL
  for (s in list(start, z_hat[free])) {
    s <- pmin(pmax(s, lower[free] + 1e-8), upper[free] - 1e-8)
    o <- bobyqa(s / sc[free], f, lower = lower[free] / sc[free], upper = upper[free] / sc[free],
                control = list(rhobeg = 0.02, rhoend = 1e-11, maxfun = 1e5))
    if (is.null(best) || o$fval < best$fval) best <- o
  }
  list(d = best$fval, par = best$par * sc[free])
}
target <- qnorm(0.975)
n_eval <- 0
ends <- function(k, ci_row) {
  sapply(1:2, function(side) {
    last <- z_hat[-k]
    zeta <- function(x) {
      r <- prof_dev(k, x, last); last <<- r$par; n_eval <<- n_eval + 1
      sign(x - z_hat[k]) * sqrt(max(r$d - d_min, 0))
    }
    goal <- if (side == 1) -target else target
    a <- ci_row[side]; w <- abs(ci_row[2] - ci_row[1])
    lo <- a - 0.1 * w; hi <- a + 0.1 * w
    lo <- max(lo, lower[k]); hi <- min(hi, upper[k])
    uniroot(function(x) zeta(x) - goal, c(lo, hi), tol = 1e-10, extendInt = "yes")$root
  })
}
ex <- t(sapply(seq_along(z_hat), function(k) ends(k, ci[k, ])))
out <- list(case = "inf_profile_glmm_vector",
            versions = list(lme4 = as.character(packageVersion("lme4")), R = R.version.string),
            formula = "cbind(incidence, size - incidence) ~ period + (1 + x | herd)",
            data_note = "cbpp.csv with x = as.numeric(period == '1')",
            level = 0.95, names = rownames(ci),
            lme4_profile_ci = list(lower = unname(ci[, 1]), upper = unname(ci[, 2]),
                                   messages = msgs, warnings = warns),
            exact_profile_ci = list(
              description = "roots of zeta(x) = -+qnorm(0.975): Laplace deviance with PIRLS at tolPwrss = 1e-12 (getME(fit, 'devfun') with environment(devfun)$tolPwrss set to 1e-12; getME's default 1e-7 leaves the deviance ~1e-3 off far from the optimum), inner minimisation with bobyqa (rhoend 1e-11, two starts: the previous optimum and the ML estimates), uniroot tol 1e-10",
              lower = ex[, 1], upper = ex[, 2], min_deviance = d_min, ml_estimates = unname(z_hat),
              n_profile_evaluations = n_eval),
            theta = unname(getME(g, "theta")), fixef = unname(fixef(g)),
            logLik = as.numeric(logLik(g)))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
      "tests/reference/inf_profile_glmm_vector.json")
print(cbind(ci, ex), digits = 9)
