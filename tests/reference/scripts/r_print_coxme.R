# coxme's print(fit) of tight refits, for tests/results/test_r_layout.py (beside r_print.R):
# kidney with (1 | id) and the simulated random-slope data with (1 + x | g), Efron ties.
# Writes r_print/coxme_<case>.txt and r_print/coxme_numbers.json (the printed numbers at full
# precision, so the test can lay R's own numbers out and compare character by character).
# Run from tests/reference/: Rscript scripts/r_print_coxme.R
suppressPackageStartupMessages({library(survival); library(coxme); library(jsonlite)})
options(width = 80)
# eps below optim's reltol would be coxme's advice; 1e-12 for both only draws its warning
tight <- suppressWarnings(coxme.control(eps = 1e-12, toler.chol = 1e-14,
                                        optpar = list(method = "BFGS", control = list(reltol = 1e-12))))
sim <- read.csv("coxme_slopes_data.csv")
fits <- list(
  kidney = coxme(Surv(time, status) ~ age + sex + (1 | id), data = kidney, ties = "efron", control = tight),
  slopes = coxme(Surv(time, status) ~ x + z + (1 + x | g), data = sim, ties = "efron", control = tight))
dir.create("r_print", showWarnings = FALSE)
numbers <- list()
for (case in names(fits)) {
  fit <- fits[[case]]
  writeLines(capture.output(print(fit)), file.path("r_print", paste0("coxme_", case, ".txt")))
  nvar <- length(fixef(fit)); nfrail <- nrow(fit$var) - nvar
  vc <- VarCorr(fit)
  numbers[[case]] <- list(
    call = deparse(fit$call, width.cutoff = 500),
    loglik = unname(fit$loglik + c(0, 0, fit$penalty)), n = unname(fit$n), df = unname(fit$df),
    beta = unname(fixef(fit)), se = unname(sqrt(diag(fit$var)[nfrail + 1:nvar])),
    fe_names = names(fixef(fit)), formula = deparse(fit$call$formula), groups = names(vc),
    covariances = lapply(unname(vc), function(v) {   # VarCorr: variances, correlations off the diagonal
      m <- as.matrix(v); if (length(m) == 1) return(m)
      s <- sqrt(diag(m)); cv <- m; cv[row(m) != col(m)] <- (m * outer(s, s))[row(m) != col(m)]; cv }),
    column_names = lapply(unname(vc), function(v) if (is.matrix(v)) rownames(v) else names(v)),
    iterations = unname(fit$iter))
}
writeLines(toJSON(numbers, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path("r_print", "coxme_numbers.json"))
