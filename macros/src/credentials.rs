//! The credential setters of the REST and queue clients of a service (`with_bearer`,
//! `with_basic`, `with_api_key`), forwarding to the runtime client. A leaf.

use proc_macro2::TokenStream;
use quote::quote;

/// The three setters; `authorization` names the header a bearer token travels in, `api_key`
/// where an API key goes (both for the docs).
pub(crate) fn credential_setters(authorization: &str, api_key: &str) -> TokenStream {
    let bearer = format!("Sends `{authorization}: Bearer <token>` to operations whose security asks for it.");
    let key = format!("Sends `key` wherever an operation's API key scheme wants it ({api_key}).");
    quote! {
        #[doc = #bearer]
        pub fn with_bearer(mut self, token: impl ::core::convert::Into<::std::string::String>) -> Self {
            self.inner = self.inner.with_bearer(token);
            self
        }
        /// Sends HTTP Basic credentials to operations whose security asks for them.
        pub fn with_basic(
            mut self,
            user: impl ::core::convert::Into<::std::string::String>,
            password: impl ::core::convert::Into<::std::string::String>,
        ) -> Self {
            self.inner = self.inner.with_basic(user, password);
            self
        }
        #[doc = #key]
        pub fn with_api_key(mut self, key: impl ::core::convert::Into<::std::string::String>) -> Self {
            self.inner = self.inner.with_api_key(key);
            self
        }
    }
}
