//! The gumbolt command line and example programs
