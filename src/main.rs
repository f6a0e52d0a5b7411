use clap::Parser;

fn main() {
    let cli = sluice::cli::Cli::parse();
    std::process::exit(sluice::commands::main(cli));
}
