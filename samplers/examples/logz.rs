//! Estimates `log Z` of an RBM with the exact, AIS and PT+BAR estimators and prints timings.
//!
//! ```text
//! cargo run --release -p gumbolt-samplers --example logz -- <model> [method] [key=value ...]
//! ```
//!
//! `<model>` is `random:N1:N2:SCALE[:SEED]` (`Rbm::random`) or the path of an RBM JSON file;
//! `method` is `ais`, `pt`, `exact` or `all` (default). Overrides: `steps=`, `chains=`,
//! `runs=` (AIS and PT), `sweeps=`, `burn=`, `thin=` (PT), `base=uniform|field|gibbs`,
//! `schedule=adaptive|linear|sm08`, `seed=`.

use gumbolt_core::LogPartitionEstimate;
use gumbolt_core::prior::ExactPartition;
use gumbolt_priors::Rbm;
use gumbolt_samplers::Progress;
use gumbolt_samplers::logz::{Ais, AisBase, AisConfig, AisSchedule, PtBar, PtBarConfig};
use std::collections::HashMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args
        .first()
        .ok_or("usage: logz <model> [method] [key=value ...]")?;
    let method = args
        .get(1)
        .filter(|a| !a.contains('='))
        .cloned()
        .unwrap_or_else(|| "all".into());
    let kv: HashMap<String, String> = args
        .iter()
        .filter_map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let get = |k: &str| kv.get(k).and_then(|v| v.parse::<usize>().ok());

    let rbm = if let Some(spec) = model.strip_prefix("random:") {
        let p: Vec<&str> = spec.split(':').collect();
        let seed = p.get(3).map_or(1, |s| s.parse().unwrap());
        let mut rng = gumbolt_core::rng::root_rng(seed);
        Rbm::random(p[0].parse()?, p[1].parse()?, p[2].parse()?, &mut rng)
    } else {
        Rbm::load_json(model)?
    };
    println!("model {model}: {}x{}", rbm.n1(), rbm.n2());
    let t0 = Instant::now();
    let mut last_phase = None;
    let mut progress = |p: Progress| {
        if last_phase != Some(p.phase) {
            eprintln!(
                "  [{:>7.2} s] {:?} starts",
                t0.elapsed().as_secs_f64(),
                p.phase
            );
            last_phase = Some(p.phase);
        }
    };
    let show = |name: &str, e: &LogPartitionEstimate, secs: f64| {
        println!(
            "{name:>6}: log Z = {:.4} ± {:.4} ({} runs) in {secs:.2} s",
            e.log_z, e.std_err, e.runs
        );
        for w in &e.warnings {
            println!("        warning: {w}");
        }
    };
    if method == "exact" || method == "all" {
        let t = Instant::now();
        match rbm.log_partition() {
            Ok(z) => println!(
                " exact: log Z = {z:.4} in {:.2} s",
                t.elapsed().as_secs_f64()
            ),
            Err(e) => println!(" exact: {e}"),
        }
    }
    let seed = get("seed").unwrap_or(0) as u64;
    if method == "ais" || method == "all" {
        let mut cfg = AisConfig {
            seed,
            ..Default::default()
        };
        if let Some(c) = get("chains") {
            cfg.chains = c;
        }
        if let Some(r) = get("runs") {
            cfg.runs = r;
        }
        if let Some(t) = get("threads") {
            cfg.threads = t;
        }
        if kv.contains_key("notarget") {
            cfg.target_std_err = None;
        }
        let steps = get("steps").unwrap_or(cfg.schedule.steps());
        match kv.get("schedule").map(String::as_str) {
            Some("linear") => cfg.schedule = AisSchedule::Linear { steps },
            Some("sm08") => cfg.schedule = AisSchedule::Sm08 { steps },
            _ => {
                if let AisSchedule::Adaptive { steps: s, .. } = &mut cfg.schedule {
                    *s = steps;
                }
            }
        }
        match kv.get("base").map(String::as_str) {
            Some("uniform") => cfg.base = AisBase::Uniform,
            Some("field") => cfg.base = AisBase::PriorField,
            _ => {}
        }
        let t = Instant::now();
        let mut ais = Ais::new(cfg)?;
        let e = ais.estimate_with_progress(&rbm, &mut progress)?;
        show("ais", &e, t.elapsed().as_secs_f64());
        let r = ais.report().unwrap();
        let min_ess = r.run_ess.iter().copied().fold(f64::INFINITY, f64::min);
        println!("        {} βs, min run ESS {min_ess:.1}", r.betas.len());
    }
    if method == "pt" || method == "all" {
        let mut cfg = PtBarConfig {
            seed,
            ..Default::default()
        };
        if let Some(r) = get("runs") {
            cfg.runs = r;
        }
        if let Some(s) = get("sweeps") {
            cfg.sweeps = s;
        }
        if let Some(b) = get("burn") {
            cfg.burn_in = b;
        }
        if let Some(t) = get("thin") {
            cfg.thin = t;
        }
        if let Some(t) = get("threads") {
            cfg.threads = t;
        }
        if kv.contains_key("notarget") {
            cfg.target_std_err = None;
        }
        let t = Instant::now();
        let mut pt = PtBar::new(cfg)?;
        let e = pt.estimate_with_progress(&rbm, &mut progress)?;
        show("pt", &e, t.elapsed().as_secs_f64());
        let r = pt.report().unwrap();
        let rates: Vec<String> = r.swap_rates.iter().map(|a| format!("{a:.2}")).collect();
        println!(
            "        {} temperatures, swap rates [{}]",
            r.ladder.len(),
            rates.join(" ")
        );
        println!(
            "        {} sweeps in {} rounds, {} stored steps",
            r.sweeps, r.rounds, r.stored_steps
        );
        if let Some(tu) = &r.tuning {
            println!(
                "        ladder: {} initial temperatures, {} pilot PT runs",
                tu.initial_replicas, tu.pilot_runs
            );
        }
    }
    Ok(())
}
