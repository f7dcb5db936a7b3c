//! The anchor: protox + tonic-prost-build over the given files.
//! Usage: anchor OUT INCLUDE LISTFILE (one .proto path per line, relative to INCLUDE)
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, include, list) = (&args[0], &args[1], &args[2]);
    let files: Vec<String> = std::fs::read_to_string(list).unwrap().lines().map(str::to_owned).collect();
    let fds = match protox::compile(&files, [include]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("protox: {e:?}");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(out).unwrap();
    tonic_prost_build::configure().out_dir(out).compile_fds(fds).expect("tonic-prost-build");
}
