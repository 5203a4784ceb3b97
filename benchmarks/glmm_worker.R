# Child process for bench_glmm.py: fit one GLMM / CLMM case with its R peer and print one JSON line.
# Usage: Rscript glmm_worker.R CASE DATA_DIR REPEATS MAX_REPEAT_S
# CASE: cbpp_laplace, cbpp_agq25     lme4::glmer(cbind(incidence, size - incidence) ~ period +
#                                      (1 | herd), cbpp, binomial, nAGQ = 1 / 25)
#       grouseticks_poisson          lme4::glmer(TICKS ~ YEAR + scale(HEIGHT) + (1|BROOD) +
#                                      (1|INDEX) + (1|LOCATION), grouseticks, poisson)
#       grouseticks_nb               glmmTMB::glmmTMB(TICKS ~ YEAR + (1 | LOCATION), grouseticks,
#                                      family = nbinom2)
#       salamanders_zinb             glmmTMB::glmmTMB(count ~ mined + (1 | site), Salamanders,
#                                      ziformula = ~mined, family = nbinom2)
#       owls_nbinom1                 glmmTMB::glmmTMB(SiblingNegotiation ~ FoodTreatment +
#                                      offset(log(BroodSize)) + (1 | Nest), Owls, family = nbinom1)
#       wine_laplace, wine_agq10     ordinal::clmm(rating ~ temp + contact + (1|judge), data = wine,
#                                      nAGQ = 1 / 10)
# Data: DATA_DIR/<dataset>.csv with the factor columns (levels, orderedness) of
# DATA_DIR/factor_levels.json, as mixedppl.datasets.load builds them.
# Timed: the fit call only (library, data loading not timed). One warm-up fit (first_s), then
# REPEATS fits (median wall = warm_s, median user + system = cpu_s) unless the warm-up took longer
# than MAX_REPEAT_S. "loglik" is logLik(fit), except for glmer with nAGQ > 1 on a binomial
# response: lme4 then reports -deviance/2 with the deviance taken relative to the saturated model
# (cbpp: -50.0050 at nAGQ=25 against -92.0266 with Laplace), so "loglik" adds back the saturated
# log-likelihood sum(dbinom(y, n, y / n, log = TRUE)) (-41.9784 on cbpp) to put it on the Laplace /
# mixedppl scale; the value logLik() prints is kept as "loglik_raw".
suppressMessages({
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
case <- args[1]
data_dir <- args[2]
repeats <- as.integer(args[3])
max_repeat_s <- as.numeric(args[4])

load_data <- function(name) {
  levels_all <- fromJSON(file.path(data_dir, "factor_levels.json"), simplifyVector = FALSE)
  info <- levels_all[[name]]
  classes <- setNames(rep("character", length(info)), names(info))
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")), colClasses = classes)
  for (col in names(info)) {
    d[[col]] <- factor(d[[col]], levels = unlist(info[[col]]$levels),
                       ordered = isTRUE(info[[col]]$ordered))
  }
  d
}

spec <- switch(case,
  cbpp_laplace = list(pkg = "lme4", data = "cbpp", nAGQ = 1L),
  cbpp_agq25 = list(pkg = "lme4", data = "cbpp", nAGQ = 25L),
  grouseticks_poisson = list(pkg = "lme4", data = "grouseticks"),
  grouseticks_nb = list(pkg = "glmmTMB", data = "grouseticks"),
  salamanders_zinb = list(pkg = "glmmTMB", data = "salamanders"),
  owls_nbinom1 = list(pkg = "glmmTMB", data = "owls"),
  wine_laplace = list(pkg = "ordinal", data = "wine", nAGQ = 1L),
  wine_agq10 = list(pkg = "ordinal", data = "wine", nAGQ = 10L),
  stop("unknown case ", case))
suppressMessages(library(spec$pkg, character.only = TRUE))
d <- load_data(spec$data)

fit_fun <- switch(case,
  cbpp_laplace = , cbpp_agq25 = function()
    glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = d, family = binomial,
          nAGQ = spec$nAGQ),
  grouseticks_poisson = function()
    glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), data = d,
          family = poisson),
  grouseticks_nb = function()
    glmmTMB(TICKS ~ YEAR + (1 | LOCATION), data = d, family = nbinom2),
  salamanders_zinb = function()
    glmmTMB(count ~ mined + (1 | site), data = d, ziformula = ~mined, family = nbinom2),
  owls_nbinom1 = function()
    glmmTMB(SiblingNegotiation ~ FoodTreatment + offset(log(BroodSize)) + (1 | Nest), data = d,
            family = nbinom1),
  wine_laplace = , wine_agq10 = function()
    clmm(rating ~ temp + contact + (1 | judge), data = d, nAGQ = spec$nAGQ))

timed <- function() {
  t <- system.time(m <<- suppressWarnings(suppressMessages(fit_fun())))
  c(t[["elapsed"]], t[["user.self"]] + t[["sys.self"]])
}
first <- timed()
warm <- if (first[1] <= max_repeat_s && repeats > 0) sapply(seq_len(repeats), function(i) timed()) else NULL

loglik_raw <- as.numeric(logLik(m))
loglik <- loglik_raw
if (spec$pkg == "lme4" && isTRUE(spec$nAGQ > 1) && family(m)$family == "binomial") {
  n <- m@resp$weights
  y <- round(m@resp$y * n)
  loglik <- loglik_raw + sum(dbinom(y, n, y / n, log = TRUE))
}
conv <- switch(spec$pkg,
  lme4 = is.null(m@optinfo$conv$lme4$code) && m@optinfo$conv$opt == 0,
  glmmTMB = m$fit$convergence == 0 && isTRUE(m$sdr$pdHess),
  ordinal = m$optRes$convergence == 0)
rss <- tryCatch({
  s <- readLines("/proc/self/status")
  as.numeric(gsub("[^0-9]", "", grep("^VmHWM", s, value = TRUE))) / 1024
}, error = function(e) NA)
num <- function(x) if (is.null(x) || length(x) == 0) "null" else sprintf("%.6f", x)
cat(sprintf('{"tool": "%s", "case": "%s", "first_s": %.6f, "first_cpu_s": %.6f, "warm_s": %s, "cpu_s": %s, "n_warm": %d, "loglik": %.10f, "loglik_raw": %.10f, "converged": %s, "rss_mb": %s, "version": "%s"}\n',
            spec$pkg, case, first[1], first[2],
            if (is.null(warm)) "null" else num(median(warm[1, ])),
            if (is.null(warm)) "null" else num(median(warm[2, ])),
            if (is.null(warm)) 0L else ncol(warm), loglik, loglik_raw,
            if (isTRUE(conv)) "true" else "false",
            if (is.na(rss)) "null" else sprintf("%.1f", rss),
            as.character(packageVersion(spec$pkg))))
