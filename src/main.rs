//! The `corral` binary: parses the command line and hands over to `corral::cli`.

fn main() {
    std::process::exit(corral::cli::main());
}
