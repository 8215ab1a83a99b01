//! The `corral` binary. This minimal entry point only dispatches `corral cli`; the
//! server's main wires the other subcommands to the same `cli` modules.

fn main() {
    // Lossy conversion: zkCli treats its words as text, and a stray invalid byte should
    // not abort the whole invocation.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.get(1).map(String::as_str) == Some("cli") {
        let code = corral::cli::zkcli::run(&args[2..]);
        std::process::exit(code);
    }
    eprintln!("usage: corral cli [-server host:port[,host:port...][/chroot]] [-timeout ms] [-r] [-waitforconnection] [cmd args...]");
    std::process::exit(2);
}
