//! Times loading the bundled binarised MNIST.
//!
//! `cargo run --release -p gumbolt-models --example load_mnist`

use std::time::Instant;

use gumbolt_datasets::{
    AmatSpec, MNIST_SPLIT_SIZES, binarized_mnist_dir, load_amat, load_bundled_mnist,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = binarized_mnist_dir();
    let path = dir.join("binarized_mnist_train.amat.gz");
    let spec = AmatSpec::binary_mnist().with_rows(MNIST_SPLIT_SIZES[0]);
    for _ in 0..3 {
        let t = Instant::now();
        let train = load_amat(&path, &spec)?;
        let dt = t.elapsed();
        println!(
            "train: {} images in {:.1} ms ({:.0} MB/s of text), mean pixel {:.4}",
            train.n(),
            dt.as_secs_f64() * 1e3,
            (train.n() * 1568) as f64 / dt.as_secs_f64() / 1e6,
            train.mean()
        );
    }
    let t = Instant::now();
    let s = load_bundled_mnist()?;
    println!(
        "all splits ({}/{}/{}) in {:.1} ms",
        s.train.n(),
        s.valid.n(),
        s.test.n(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
