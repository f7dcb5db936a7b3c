//! `#[derive(DeserializeModel)]`: a `serde::Deserialize` impl for generated OpenAPI models that
//! is a fraction of the size of serde's own derive.
//!
//! serde's derive writes a visitor per type (field identifiers, `visit_map`, `visit_seq`); with
//! thousands of models that is most of a crate's check time. Generated models are JSON-only, so
//! this derive reads the value as JSON once and hands each field to one generic runtime helper
//! (`switchboard::__private::api_model`): one call per field, no per-type visitor.
//!
//! Shapes (serde's attributes, which `Serialize` also reads, say the wire names):
//! - structs with named fields: `#[serde(rename = "..")]`, `default` (absent → `Default`),
//!   `flatten` (the remaining properties, a map);
//! - string enums: unit variants with `#[serde(rename = "..")]` plus one `#[serde(untagged)]`
//!   newtype variant catching unknown strings (the catch-all is what marks them);
//! - `#[serde(untagged)]` enums of newtype variants: the first variant that reads the value;
//! - response enums (unit, newtype and `(u16, Body)` variants), externally tagged as serde
//!   writes them (`{"NotFound": {...}}`), read through `deserialize_enum` so that any
//!   enum-capable deserializer (the REST client's, by variant index) works.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr};

/// Serde attributes of one field or variant that matter here.
#[derive(Default)]
struct Attrs {
    rename: Option<String>,
    /// `#[model(default = "<json>")]`: the schema's default, used when the property is absent.
    default_json: Option<String>,
    default: bool,
    flatten: bool,
    untagged: bool,
}

fn attrs(list: &[syn::Attribute]) -> syn::Result<Attrs> {
    let mut out = Attrs::default();
    for a in list.iter().filter(|a| a.path().is_ident("model")) {
        a.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                out.default_json = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else {
                Err(meta.error("expected `default = \"<json>\"`"))
            }
        })?;
    }
    for a in list.iter().filter(|a| a.path().is_ident("serde")) {
        a.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                out.rename = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("default") {
                out.default = true;
                if meta.input.peek(syn::Token![=]) {
                    meta.value()?.parse::<LitStr>()?;
                }
            } else if meta.path.is_ident("flatten") {
                out.flatten = true;
            } else if meta.path.is_ident("untagged") {
                out.untagged = true;
            } else if meta.input.peek(syn::Token![=]) {
                // skip_serializing_if, crate, ...: Serialize's business.
                meta.value()?.parse::<syn::Expr>()?;
            }
            Ok(())
        })?;
    }
    Ok(out)
}

fn wire_name(ident: &syn::Ident, a: &Attrs) -> String {
    a.rename.clone().unwrap_or_else(|| ident.to_string().trim_start_matches("r#").to_owned())
}

/// Entry point.
pub fn derive(input: TokenStream) -> TokenStream {
    match syn::parse2::<DeriveInput>(input).and_then(|input| expand(&input)) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let name = ident.to_string();
    let p = quote!(::switchboard::__private);
    let body = match &input.data {
        Data::Struct(s) => {
            let Fields::Named(fields) = &s.fields else {
                return Err(syn::Error::new_spanned(&s.fields, "DeserializeModel needs named fields"));
            };
            let mut inits = Vec::new();
            let mut flatten = None;
            for f in &fields.named {
                let a = attrs(&f.attrs)?;
                let fi = f.ident.as_ref().expect("named");
                if a.flatten {
                    flatten = Some(fi.clone());
                    continue;
                }
                let key = wire_name(fi, &a);
                if let Some(json) = &a.default_json {
                    inits.push(quote!(#fi: __m.defaulted(#key, #json)?,));
                    continue;
                }
                let call = if a.default { quote!(optional) } else { quote!(required) };
                inits.push(quote!(#fi: __m.#call(#key)?,));
            }
            let rest = flatten.map(|fi| quote!(#fi: __m.rest()?,));
            quote! {
                let mut __m = #p::api_model::Object::<__D::Error>::read(__d, #name)?;
                ::core::result::Result::Ok(#ident { #(#inits)* #rest })
            }
        }
        Data::Enum(e) => {
            let all_attrs: Vec<Attrs> = e.variants.iter().map(|v| attrs(&v.attrs)).collect::<syn::Result<_>>()?;
            let enum_untagged = attrs(&input.attrs)?.untagged;
            if enum_untagged {
                let tries = e.variants.iter().map(|v| {
                    let vi = &v.ident;
                    quote!(if let ::core::option::Option::Some(__x) = #p::api_model::attempt(&__v) { return ::core::result::Result::Ok(#ident::#vi(__x)); })
                });
                quote! {
                    let __v = #p::api_model::value::<__D>(__d)?;
                    #(#tries)*
                    ::core::result::Result::Err(#p::api_model::no_variant::<__D::Error>(#name, &__v))
                }
            } else if !all_attrs.iter().any(|a| a.untagged) {
                // No catch-all variant: not a string enum.
                // A response enum: read through `deserialize_enum`, so that both JSON
                // (`{"NotFound": {...}}`) and the REST client's status-code deserializer work.
                let names: Vec<String> = e.variants.iter().map(|v| v.ident.to_string()).collect();
                let mut shapes = Vec::new();
                let mut arms = Vec::new();
                for (i, v) in e.variants.iter().enumerate() {
                    let vi = &v.ident;
                    let (shape, build) = match &v.fields {
                        Fields::Unit => (0u8, quote!(#ident::#vi)),
                        Fields::Unnamed(f) if f.unnamed.len() == 1 => (1, quote!(#ident::#vi(#p::api_model::payload(__payload)?))),
                        Fields::Unnamed(f) if f.unnamed.len() == 2 => {
                            (2, quote!({ let (__a, __b) = #p::api_model::payload(__payload)?; #ident::#vi(__a, __b) }))
                        }
                        _ => return Err(syn::Error::new_spanned(v, "response enum variants are unit, `(Body)` or `(u16, Body)`")),
                    };
                    shapes.push(shape);
                    arms.push(quote!(#i => #build,));
                }
                quote! {
                    let (__i, __payload) = #p::api_model::response_variant::<__D>(__d, #name, &[#(#names),*], &[#(#shapes),*])?;
                    ::core::result::Result::Ok(match __i {
                        #(#arms)*
                        _ => return ::core::result::Result::Err(#p::api_model::unknown_value::<__D::Error>(#name, "?")),
                    })
                }
            } else {
                let mut arms = Vec::new();
                let mut other = None;
                for (v, a) in e.variants.iter().zip(&all_attrs) {
                    let vi = &v.ident;
                    match (&v.fields, a.untagged) {
                        (Fields::Unit, false) => {
                            let key = wire_name(vi, a);
                            arms.push(quote!(#key => #ident::#vi,));
                        }
                        (Fields::Unnamed(_), true) => other = Some(vi.clone()),
                        _ => return Err(syn::Error::new_spanned(v, "DeserializeModel enums have unit variants and one untagged catch-all")),
                    }
                }
                let fallback = match other {
                    Some(vi) => quote!(_ => #ident::#vi(__s),),
                    None => quote!(_ => return ::core::result::Result::Err(#p::api_model::unknown_value::<__D::Error>(#name, &__s)),),
                };
                quote! {
                    let __s = #p::api_model::string::<__D>(__d)?;
                    ::core::result::Result::Ok(match __s.as_str() { #(#arms)* #fallback })
                }
            }
        }
        Data::Union(u) => return Err(syn::Error::new_spanned(u.union_token, "DeserializeModel does not support unions")),
    };
    Ok(quote! {
        impl<'de> #p::serde::Deserialize<'de> for #ident {
            fn deserialize<__D: #p::serde::Deserializer<'de>>(__d: __D) -> ::core::result::Result<Self, __D::Error> {
                #body
            }
        }
    })
}
