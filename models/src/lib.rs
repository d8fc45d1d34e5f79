//! GumBolt and its baselines composed from priors, estimators and samplers
