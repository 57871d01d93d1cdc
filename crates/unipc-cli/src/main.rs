//! `unipc`: the command-line face of the unipc library.
fn main() {}
