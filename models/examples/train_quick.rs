//! End-to-end: train GumBolt `nonlinear` (GB Table 1 `~`, k = 1) on the bundled MNIST with the
//! [`Trainer`] (GB §5.1 schedules scaled to `--iters`), PCD 100 chains × 200 sweeps, monitoring
//! F_20 / L_20 into a JSON-lines file and checkpointing; then `log Z` by PT + bridge sampling and
//! the S-sample test NLL on the full test set.
//!
//! ```text
//! cargo run --release -p gumbolt-models --example train_quick -- \
//!     [--iters 3000] [--samples 1000] [--threads 0] [--logz pt|ais] [--seed 0] \
//!     [--lr paper|reference] [--out target/train_quick]
//! ```

use std::io::Write;
use std::time::Instant;

use gumbolt_datasets::load_bundled_mnist;
use gumbolt_models::eval::{EvalConfig, LogZConfig, estimate_log_z, evaluate};
use gumbolt_models::gumbolt::{GumBolt, GumBoltConfig, LrSchedule, Structure};
use gumbolt_models::train::{Interval, TrainEvent, TrainImages, Trainer, TrainerConfig};
use gumbolt_samplers::PcdConfig;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad value for {name}: {v}"))
        })
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iters: u64 = arg("--iters", 3000);
    let samples: usize = arg("--samples", 1000);
    let threads: usize = arg("--threads", 0);
    let logz: String = arg("--logz", "pt".to_string());
    let seed: u64 = arg("--seed", 0);
    let lr: String = arg("--lr", "paper".to_string());
    let out: String = arg("--out", "target/train_quick".to_string());
    std::fs::create_dir_all(&out)?;

    let data = load_bundled_mnist()?;
    let mut config = GumBoltConfig::new(Structure::Nonlinear, data.train.dim())
        .with_iterations(iters)
        .with_seed(seed);
    config.train.lr = match lr.as_str() {
        "paper" => LrSchedule::paper(3e-3),
        "reference" => LrSchedule::reference(3e-3),
        other => return Err(format!("--lr paper|reference, got {other}").into()),
    };
    let pcd = PcdConfig::default().chains(100).sweeps(200).seed(seed);
    let model = GumBolt::with_pcd(config, &data.train.pixel_means(), pcd)?;
    let tcfg = TrainerConfig::default()
        .with_seed(seed)
        .with_monitor_interval(Interval::Times(10))
        .with_checkpoint_interval(Interval::Times(4));
    let ckpt = format!("{out}/model.ckpt");
    let mut trainer = Trainer::new(
        model,
        TrainImages::Binary(data.train),
        Some(&data.valid),
        tcfg,
    )?
    .with_checkpoint_path(&ckpt);
    let mut metrics = std::fs::File::create(format!("{out}/metrics.jsonl"))?;
    println!("training nonlinear k=1, T={iters}, PCD 100x200, lr {lr}, seed {seed}");
    let t0 = Instant::now();
    let summary = trainer.run(u64::MAX, &mut |e| match e {
        TrainEvent::Step(s) if s.iteration % 250 == 0 => {
            println!(
                "  it {:5}/{}  loss {:8.3}  beta {:.2}  lr {:.1e}  {:.1} ms/it",
                s.iteration,
                s.total,
                s.parts.loss,
                s.parts.beta,
                s.learning_rate,
                1e3 * s.seconds
            );
        }
        TrainEvent::Metrics(m) => {
            writeln!(metrics, "{}", serde_json::to_string(m).unwrap()).unwrap();
            println!(
                "  [metrics it {:5}] F20 train {:8.3} valid {:8.3} | L20 train {:8.3} valid {:8.3} | logZ {:.2} ± {:.2} ({})",
                m.iteration,
                m.train_relaxed,
                m.valid_relaxed.unwrap_or(f64::NAN),
                m.train_discrete,
                m.valid_discrete.unwrap_or(f64::NAN),
                m.log_z,
                m.log_z_std,
                m.log_z_method
            );
        }
        TrainEvent::Checkpoint(c) => {
            println!("  checkpoint it {} ({} bytes, {:.1} ms)", c.iteration, c.bytes, 1e3 * c.seconds);
        }
        _ => {}
    })?;
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "train: {} iterations, step time {:.1} s, wall {:.1} s (incl. monitoring/checkpoints), sec_per_iter median {:.4} mean {:.4}",
        summary.end_iteration,
        summary.step_seconds,
        wall,
        summary.sec_per_iter_median.unwrap_or(f64::NAN),
        summary.sec_per_iter_mean.unwrap_or(f64::NAN)
    );

    let model = trainer.into_model();
    let lz_cfg = match logz.as_str() {
        "pt" => LogZConfig::pt_bar(),
        "ais" => LogZConfig::ais(),
        other => return Err(format!("--logz pt|ais, got {other}").into()),
    }
    .with_seed(seed);
    let t1 = Instant::now();
    let log_z = estimate_log_z(model.prior(), &lz_cfg, &mut |_| {})?;
    println!(
        "log Z ({}) = {:.4} ± {:.4}  [{:.1} s] {:?}",
        log_z.method,
        log_z.value,
        log_z.std,
        t1.elapsed().as_secs_f64(),
        log_z.warnings
    );
    let ecfg = EvalConfig::default()
        .with_samples(samples)
        .with_threads(threads)
        .with_seed(seed);
    let mut last = 0.0;
    let report = evaluate(&model, &data.test, &ecfg, &log_z, &mut |p| {
        if p.elapsed_seconds - last > 10.0 || p.done == p.total {
            last = p.elapsed_seconds;
            let eta = if p.done > 0 {
                p.elapsed_seconds * (p.total - p.done) as f64 / p.done as f64
            } else {
                f64::NAN
            };
            println!(
                "  eval {}/{}  {:.0} s, ETA {:.0} s",
                p.done, p.total, p.elapsed_seconds, eta
            );
        }
    })?;
    println!(
        "test NLL = {:.3} ± {:.3} (sem over {} images, S = {}), log Z = {:.3} ± {:.3}, eval {:.1} s on {} threads",
        report.test_nll,
        report.test_nll_sem,
        report.n,
        report.samples,
        report.log_z,
        report.log_z_std,
        report.seconds,
        report.threads
    );
    std::fs::write(
        format!("{out}/eval.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    Ok(())
}
