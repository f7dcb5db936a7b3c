//! [`ServerConfig`]: the gRPC settings every method of a served service shares.

use tonic::codec::EnabledCompressionEncodings;

/// Server-side gRPC settings shared by every method of a service.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub(crate) accept: EnabledCompressionEncodings,
    pub(crate) send: EnabledCompressionEncodings,
    pub(crate) max_decoding_message_size: Option<usize>,
    pub(crate) max_encoding_message_size: Option<usize>,
}

impl ServerConfig {
    pub(crate) fn apply<C>(&self, grpc: tonic::server::Grpc<C>) -> tonic::server::Grpc<C>
    where
        C: tonic::codec::Codec,
    {
        grpc.apply_compression_config(self.accept, self.send)
            .apply_max_message_size_config(self.max_decoding_message_size, self.max_encoding_message_size)
    }
}
