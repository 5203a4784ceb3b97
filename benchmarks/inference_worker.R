# Child process for bench_inference.py: time one inference task with lme4 (and pbkrtest) and
# print one JSON line.
# Usage: Rscript inference_worker.R TASK CSV FORMULA FACTORS(comma-separated) REPEATS [NSIM]
# TASK: profile  confint(fit, method = "profile")
#       boot     confint(fit, method = "boot", nsim = NSIM)  (seed 1; bootMer; a cbind(...)
#                formula is fitted by glmer(..., family = binomial), any other by lmer)
#       influence  one refit per deleted level of the first factor, update(fit, data = subset),
#                  keeping fixef and vcov (HLMdiag's case-deletion refits, done by hand)
#       kr       pbkrtest::vcovAdj(fit) and Lb_ddf for each coefficient
# Timed: the task alone (the model is fitted before, untimed). One warm-up run (first_s), then
# REPEATS runs (median = warm_s, cpu_s = median user + system time).
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
task <- args[1]
d <- read.csv(args[2])
for (f in strsplit(args[4], ",")[[1]]) d[[f]] <- factor(d[[f]])
form <- as.formula(args[3])
repeats <- as.integer(args[5])
nsim <- if (length(args) >= 6) as.integer(args[6]) else 500L
fit <- if (grepl("^cbind", args[3])) glmer(form, data = d, family = binomial) else
  lmer(form, data = d, REML = TRUE)
group <- strsplit(args[4], ",")[[1]][1]

run <- switch(task,
  profile = function() confint(fit, method = "profile", oldNames = FALSE),
  boot = function() {
    set.seed(1)
    suppressWarnings(suppressMessages(confint(fit, method = "boot", nsim = nsim, oldNames = FALSE)))
  },
  influence = function() {
    lv <- levels(d[[group]])
    lapply(lv, function(g) {
      f_i <- suppressWarnings(suppressMessages(update(fit, data = d[d[[group]] != g, ])))
      list(fixef(f_i), as.matrix(vcov(f_i)), VarCorr(f_i))
    })
  },
  kr = function() {
    if (!requireNamespace("pbkrtest", quietly = TRUE)) stop("pbkrtest not installed")
    adj <- pbkrtest::vcovAdj(fit)
    p <- length(fixef(fit))
    sapply(seq_len(p), function(j) pbkrtest::Lb_ddf(diag(p)[j, , drop = FALSE], vcov(fit), adj))
  },
  stop("unknown task ", task))

timed <- function() {
  t <- system.time(res <<- run())
  c(t[["elapsed"]], t[["user.self"]] + t[["sys.self"]])
}
first <- timed()
warm <- if (repeats > 0) sapply(seq_len(repeats), function(i) timed()) else matrix(first, 2)
values <- if (task %in% c("profile", "boot")) {
  sprintf('{"names": [%s], "lower": [%s], "upper": [%s]}',
          paste0('"', rownames(res), '"', collapse = ", "),
          paste(sprintf("%.10g", res[, 1]), collapse = ", "),
          paste(sprintf("%.10g", res[, 2]), collapse = ", "))
} else if (task == "kr") {
  sprintf("[%s]", paste(sprintf("%.10g", res), collapse = ", "))
} else "null"
cat(sprintf('{"tool": "lme4", "task": "%s", "first_s": %.6f, "warm_s": %.6f, "cpu_s": %.6f, "n_warm": %d, "values": %s, "version": "%s"}\n',
            task, first[1], median(warm[1, ]), median(warm[2, ]), repeats, values,
            as.character(packageVersion("lme4"))))
