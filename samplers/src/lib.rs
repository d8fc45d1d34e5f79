//! Samplers (block Gibbs, PCD, parallel tempering) and log-partition estimators (exact, AIS, PT with bridge sampling)
