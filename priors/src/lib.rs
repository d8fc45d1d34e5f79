//! Priors over binary latent units: factorial Bernoulli, restricted Boltzmann machine, polynomial Markov random field
