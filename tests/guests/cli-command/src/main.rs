//! A plain Rust program. Built for `wasm32-wasip2` it becomes a `wasi:cli`
//! command component: it exports `wasi:cli/run`, not
//! `wasi:http/incoming-handler`, so a Stratus node must refuse to deploy it.

fn main() {
    println!("hi");
}
