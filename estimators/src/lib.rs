//! Gradient estimators for discrete latent variables (Gumbel relaxation, REINFORCE, spike-and-exponential, overlapping exponentials)
