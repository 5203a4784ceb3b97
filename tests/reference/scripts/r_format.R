# Base R's format(), format.pval(), zapsmall(), abbreviate() and printCoefmat() on random inputs,
# for tests/results/test_rprint.py. Run from tests/reference/: Rscript scripts/r_format.R
library(jsonlite)
set.seed(20261202)
fmt <- lapply(1:300, function(i) {
  n <- sample(1:6, 1)
  scale <- 10^sample(-12:9, n, replace = TRUE)
  x <- signif(rnorm(n) * scale, sample(1:9, 1))
  if (runif(1) < 0.15) x[1] <- 0
  if (runif(1) < 0.1) x[n] <- round(x[n])
  d <- sample(1:8, 1); ns <- sample(c(0, 0, 0, 2, 3), 1)
  list(x = x, digits = d, nsmall = ns, out = format(x, digits = d, nsmall = ns))
})
pval <- lapply(1:200, function(i) {
  n <- sample(1:6, 1)
  p <- 10^(-runif(n, 0, 20)); if (runif(1) < 0.2) p[1] <- 1e-300
  d <- sample(1:5, 1)
  list(p = p, digits = d, out = format.pval(p, digits = d))
})
words <- c("(Intercept)", "period2", "Days", "I(Days^2)", "tempwarm", "contactyes",
           "log(x + 1)", "treatmentB:age", "sexfemale", "poly(x, 2)1", "poly(x, 2)2",
           "Subject", "ns(Days, df = 3)1", "ns(Days, df = 3)2", "conditionhigh", "AGE", "x")
abbr <- lapply(c(4, 6, 11), function(m) list(x = words, minlength = m,
                                            out = unname(abbreviate(words, minlength = m))))
coefmat <- lapply(1:80, function(i) {
  p <- sample(1:5, 1)
  est <- rnorm(p) * 10^sample(-4:3, 1)
  se <- abs(est) * runif(p, 0.02, 2) + 10^sample(-5:0, 1)
  df <- if (runif(1) < 0.5) NULL else runif(p, 2, 500)
  stat <- est / se
  pv <- if (is.null(df)) 2 * pnorm(-abs(stat)) else 2 * pt(-abs(stat), df)
  m <- cbind(Estimate = est, `Std. Error` = se)
  if (!is.null(df)) m <- cbind(m, df = df)
  m <- cbind(m, `t value` = stat, `Pr(>|t|)` = pv)
  rownames(m) <- paste0("b", seq_len(p))
  d <- sample(3:6, 1)
  list(m = unname(m), cols = colnames(m), rows = rownames(m), digits = d,
       out = capture.output(printCoefmat(m, digits = d)))
})
writeLines(toJSON(list(format = fmt, pval = pval, abbreviate = abbr, coefmat = coefmat),
                  digits = NA, auto_unbox = FALSE, matrix = "rowmajor"), "r_format.json")
