"""What comes next in a procedure, and how to get from a start to a goal.

Modules: `latent` (the latent forecaster: a transformer over the frozen clip-level features seen so far
that predicts the embedding of the next step, by regression or flow matching, read out as the nearest
step prototype or step text; its task head recognises the task), `stage` (`forecast_batch`, the stage
behind `procvid forecast` and `procvid run`'s "what comes next"), `plan` (procedure planning,
`procvid plan`).
"""
