//! The `tessera` binary: everything lives in the library (`tessera_server::cli`).

fn main() -> std::process::ExitCode {
    tessera_server::cli::main()
}
