fn main() {
    // Before anything else: commands that fork into containers run from a
    // sealed copy of the binary (CVE-2019-5736, see runtime::seal).
    if let Err(e) = berth::runtime::seal::ensure_sealed_if_needed() {
        eprintln!("error: cannot run from a sealed copy of berth: {e}");
        std::process::exit(125);
    }
    std::process::exit(berth::cli::main());
}
