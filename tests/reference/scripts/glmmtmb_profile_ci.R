# Profile-likelihood interval ends of every parameter of glmmTMB fits with zero-inflation /
# dispersion formulas, a Tweedie / t shape and random terms in the ziformula (issue 15),
# glmmTMB 1.1.5, R 4.2.2. Run from the repository root:
#   Rscript tests/reference/scripts/glmmtmb_profile_ci.R
# Writes tests/reference/glmmtmb_profile_ci.json.
#
# Two sets of ends per case:
# - "exact": root-found, no grid and no spline. For parameter j of glmmTMB's fixed vector
#   (beta, betazi, betad, theta / thetazi = log SD, psi) held at x, the Laplace negative log-likelihood
#   is minimised over all the others (nlminb on the TMB object's fn / gr, rel.tol 1e-14,
#   warm-started from the nearest point done), and uniroot (tol 1e-11) solves
#   2 (nll(x) - nll_hat) = qchisq(0.95, 1) on each side of the estimate (the root re-checked:
#   an end is -Inf / Inf where the rise stays below the cut-off out to 64 Wald SEs, or where
#   the only sign change is a failed inner fit; "rise_minus_crit" is NA there). theta and thetazi ends are
#   reported as SDs (exp), the others on glmmTMB's own scale (betad: log phi for nbinom2 and
#   tweedie, log sigma for t; psi: qlogis(p - 1) for tweedie, log df for t).
# - "glmmtmb": glmmTMB's own confint(fit, method = "profile") (TMB's tmbprofile grid and a
#   spline), rows as glmmTMB names them, for the record.
suppressMessages({library(glmmTMB); library(jsonlite)})
tight <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))
data(Salamanders, package = "glmmTMB"); sal <- Salamanders
from_json <- function(file) {
  d <- fromJSON(file.path("tests/reference", file))$data
  d$g <- factor(d$g)
  d
}
zsim <- from_json("glmmtmb_zi_zinb2_disp_sim.json")
twsim <- from_json("glmmtmb_tw_tweedie_sim.json")
crit <- qchisq(0.95, 1)

exact_ends <- function(fit) {
  obj <- fit$obj
  ctl <- list(rel.tol = 1e-14, iter.max = 1e4, eval.max = 1e4)
  o <- nlminb(fit$fit$par, obj$fn, obj$gr, control = ctl)          # polish the optimum
  par <- o$par; nll_hat <- o$objective
  se <- sqrt(diag(solve(optimHess(par, obj$fn, obj$gr))))
  pn <- names(par)
  out <- list()
  for (j in seq_along(par)) {
    seen <- list(list(x = par[j], p = par[-j]))
    nll_at <- function(x) {
      near <- seen[[which.min(sapply(seen, function(s) abs(s$x - x)))]]
      f <- function(p) { q <- par; q[-j] <- p; q[j] <- x; obj$fn(q) }
      g <- function(p) { q <- par; q[-j] <- p; q[j] <- x; obj$gr(q)[-j] }
      r <- nlminb(near$p, f, g, control = ctl)
      seen[[length(seen) + 1]] <<- list(x = x, p = r$par)
      r$objective
    }
    rise <- function(x) 2 * (nll_at(x) - nll_hat) - crit
    end <- function(dir) {
      k <- 1
      while (rise(par[j] + dir * k * se[j]) < 0) {
        k <- 2 * k
        if (k > 64) return(if (dir < 0) -Inf else Inf)
      }
      lo <- par[j] + dir * (k / 2) * se[j] * (k > 1); hi <- par[j] + dir * k * se[j]
      if (k == 1) lo <- par[j] + dir * 1e-6 * se[j]
      root <- uniroot(rise, sort(c(lo, hi)), tol = 1e-11)$root
      # a sign change from a failed inner fit is not an end: re-check the rise at the root
      # (a profile that stays below the cut-off out to 64 SEs is unbounded on that side)
      if (abs(rise(root)) > 1e-6) return(if (dir < 0) -Inf else Inf)
      root
    }
    ends <- c(end(-1), end(1))
    check <- sapply(ends, function(e) if (is.finite(e)) rise(e) else NA_real_)
    if (pn[j] %in% c("theta", "thetazi")) ends <- exp(ends)
    out[[length(out) + 1]] <- list(par = pn[j], estimate = unname(par[j]), ends = unname(ends),
                                   rise_minus_crit = unname(check))
  }
  list(nll_hat = nll_hat, params = out)
}

cases <- list(
  zip_salamanders = "glmmTMB(count ~ mined + (1 | site), ziformula = ~mined, family = poisson, data = sal, control = tight)",
  # ill-determined zi coefficients (Wald SEs 2.5): three ends are unbounded
  zinb2_disp_salamanders = "glmmTMB(count ~ mined + (1 | site), ziformula = ~mined, dispformula = ~mined, family = nbinom2, data = sal, control = tight)",
  zinb2_disp_sim = "glmmTMB(y_zinb ~ x + (1 | g), ziformula = ~x, dispformula = ~x, family = nbinom2, data = zsim, control = tight)",
  zire_zip_salamanders = "glmmTMB(count ~ mined + (1 | site), ziformula = ~mined + (1 | site), family = poisson, data = sal, control = tight)",
  tweedie_sim = "glmmTMB(y_tw ~ x + (1 | g), family = tweedie(), data = twsim, control = tight)",
  t_sim = "glmmTMB(y_t ~ x + (1 | g), family = t_family(), data = twsim, control = tight)"
)
res <- list(versions = list(glmmTMB = as.character(packageVersion("glmmTMB")), R = R.version.string),
            level = 0.95,
            data_note = paste("sal: glmmTMB's Salamanders (mixedppl/datasets/data/salamanders.csv);",
                              "zsim: the 'data' of tests/reference/glmmtmb_zi_zinb2_disp_sim.json;",
                              "twsim: the 'data' of tests/reference/glmmtmb_tw_tweedie_sim.json"))
for (nm in names(cases)) {
  t0 <- proc.time()[["elapsed"]]
  warned <- character(0)
  keep <- function(w) { warned <<- c(warned, conditionMessage(w)); invokeRestart("muffleWarning") }
  fit <- withCallingHandlers(eval(parse(text = cases[[nm]])), warning = keep)
  fit_warnings <- warned; warned <- character(0)
  ex <- exact_ends(fit)
  ci <- withCallingHandlers(tryCatch(confint(fit, method = "profile"),
                                     error = function(e) { warned <<- c(warned, conditionMessage(e)); NULL }),
                            warning = keep)
  res[[nm]] <- list(call = cases[[nm]], logLik = as.numeric(logLik(fit)),
                    fit_warnings = fit_warnings, exact = ex, glmmtmb_profile_messages = unique(warned),
                    glmmtmb = if (is.null(ci)) NULL else
                      list(rows = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2])))
  cat(nm, "logLik", res[[nm]]$logLik, "max |rise - crit|",
      max(abs(unlist(lapply(ex$params, `[[`, "rise_minus_crit"))), na.rm = TRUE),
      "seconds", proc.time()[["elapsed"]] - t0, "\n")
}
write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
      "tests/reference/glmmtmb_profile_ci.json")
