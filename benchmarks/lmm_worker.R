# Child process for bench_lmm.py: fit one REML model with lme4::lmer and print one JSON line.
# Usage: Rscript lmm_worker.R CSV FORMULA FACTORS(comma-separated) REPEATS MAX_REPEAT_S
# Timed: lmer() only. One warm-up fit (first_s), then REPEATS fits (median = warm_s) unless the
# warm-up took longer than MAX_REPEAT_S.
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
for (f in strsplit(args[3], ",")[[1]]) d[[f]] <- factor(d[[f]])
form <- as.formula(args[2])
repeats <- as.integer(args[4])
max_repeat_s <- as.numeric(args[5])

elapsed <- function() system.time(m <<- lmer(form, data = d, REML = TRUE))[["elapsed"]]
first <- elapsed()
warm <- if (first <= max_repeat_s && repeats > 0) sapply(seq_len(repeats), function(i) elapsed()) else numeric(0)
conv <- is.null(m@optinfo$conv$lme4$code) && m@optinfo$conv$opt == 0
rss <- tryCatch({
  s <- readLines("/proc/self/status")
  as.numeric(gsub("[^0-9]", "", grep("^VmHWM", s, value = TRUE))) / 1024
}, error = function(e) NA)
cat(sprintf('{"tool": "lme4", "first_s": %.6f, "warm_s": %s, "n_warm": %d, "loglik": %.10f, "converged": %s, "rss_mb": %s, "version": "%s"}\n',
            first, if (length(warm)) sprintf("%.6f", median(warm)) else "null", length(warm),
            as.numeric(logLik(m)), if (conv) "true" else "false",
            if (is.na(rss)) "null" else sprintf("%.1f", rss), as.character(packageVersion("lme4"))))
