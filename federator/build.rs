//! Generates the gRPC registry API and the etcd client from `proto/` (in pure Rust: protox
//! parses the protos, so no protoc needs installing) and keeps the registry API's encoded
//! descriptors for gRPC reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let proto = root.join("federator/v1/registry.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let descriptors = protox::compile([&proto], [&root])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("federator_descriptors.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    let etcd = root.join("etcdserverpb/rpc.proto");
    println!("cargo:rerun-if-changed={}", etcd.display());
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(protox::compile([&etcd], [&root])?)?;
    Ok(())
}
