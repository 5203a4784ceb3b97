# Tweedie unit deviances (statmod 1.5, tweedie()$dev.resids) at glmmTMB 1.1.5's fitted means, and
# what glmmTMB itself offers for deviance residuals (nothing: residuals() has types response,
# pearson and working; the dev.resids of its tweedie() and t_family() return zeros). R 4.2.2.
# Run from the repository root:  Rscript tests/reference/scripts/tweedie_deviance.R
# Writes tests/reference/tweedie_deviance_statmod.json. Data: the 'data' of
# tests/reference/glmmtmb_tw_tweedie_sim.json.
suppressMessages({library(glmmTMB); library(jsonlite)})
d <- fromJSON("tests/reference/glmmtmb_tw_tweedie_sim.json")$data; d$g <- factor(d$g)
tight <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))
call <- "glmmTMB(y_tw ~ x + (1 | g), family = glmmTMB::tweedie(), data = d, control = tight)"
fit <- eval(parse(text = call))
p <- unname(family_params(fit)); mu <- unname(fitted(fit)); y <- d$y_tw
dev <- statmod::tweedie(var.power = p, link.power = 0)$dev.resids(y, mu, rep(1, length(y)))
ft <- glmmTMB(y_t ~ x + (1 | g), family = t_family(), data = d)
msg <- function(f) tryCatch({residuals(f, type = "deviance"); "no error"},
                            error = function(e) conditionMessage(e))
res <- list(call = call, versions = list(glmmTMB = as.character(packageVersion("glmmTMB")),
                                         statmod = as.character(packageVersion("statmod"))),
            power = p, y = y, mu = mu, statmod_dev_resids = dev,
            deviance_residuals = sign(y - mu) * sqrt(dev),
            glmmtmb_deviance_type_error_tweedie = msg(fit),
            glmmtmb_deviance_type_error_t = msg(ft),
            glmmtmb_tweedie_dev_resids = family(fit)$dev.resids(y, mu, 1),
            glmmtmb_t_dev_resids_first5 = head(family(ft)$dev.resids(d$y_t, fitted(ft), 1), 5))
write(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
      "tests/reference/tweedie_deviance_statmod.json")
cat("power", p, "first dev", head(dev, 3), "\n")
