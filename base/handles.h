// Every RAII owner of a C library handle in tollgate, in one place: one
// alias per C type (CPtr from base/unique.h), so the same handle is never
// given two owners' spellings. Header only: a deleter is compiled (and its
// library needed at link time) only where an alias is used.
#pragma once

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/capability.h>
#include <zlib.h>

#include <cstdio>

#include "base/unique.h"

namespace tollgate {

// OpenSSL.
using BioPtr = CPtr<BIO, BIO_free_all>;
using BnPtr = CPtr<BIGNUM, BN_free>;
using PkeyPtr = CPtr<EVP_PKEY, EVP_PKEY_free>;
using X509Ptr = CPtr<X509, X509_free>;
using ExtensionPtr = CPtr<X509_EXTENSION, X509_EXTENSION_free>;
using Ia5Ptr = CPtr<ASN1_IA5STRING, ASN1_IA5STRING_free>;
using OctetPtr = CPtr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using NameConstraintsPtr = CPtr<NAME_CONSTRAINTS, NAME_CONSTRAINTS_free>;
using GeneralSubtreePtr = CPtr<GENERAL_SUBTREE, GENERAL_SUBTREE_free>;
using GeneralNamesPtr = CPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using GeneralNamePtr = CPtr<GENERAL_NAME, GENERAL_NAME_free>;
using SslCtxPtr = CPtr<SSL_CTX, SSL_CTX_free>;
using SslPtr = CPtr<SSL, SSL_free>;
using SslSessionPtr = CPtr<SSL_SESSION, SSL_SESSION_free>;

// libevent.
inline void freeEvdnsBase(evdns_base* b) { evdns_base_free(b, /*fail_requests=*/1); }
using EventBasePtr = CPtr<event_base, event_base_free>;
using EventConfigPtr = CPtr<event_config, event_config_free>;
using EventPtr = CPtr<event, event_free>;
using EvdnsBasePtr = CPtr<evdns_base, freeEvdnsBase>;
using EvHttpPtr = CPtr<evhttp, evhttp_free>;
using BevPtr = CPtr<bufferevent, bufferevent_free>;

// libmnl, libnftnl, libnetfilter_queue.
using MnlSocket = CPtr<mnl_socket, mnl_socket_close>;
using NftTable = CPtr<nftnl_table, nftnl_table_free>;
using NftChain = CPtr<nftnl_chain, nftnl_chain_free>;
using NftRule = CPtr<nftnl_rule, nftnl_rule_free>;
using NftExpr = CPtr<nftnl_expr, nftnl_expr_free>;
using NftExprIter = CPtr<nftnl_expr_iter, nftnl_expr_iter_destroy>;
using NftSet = CPtr<nftnl_set, nftnl_set_free>;
using NftSetElem = CPtr<nftnl_set_elem, nftnl_set_elem_free>;
using NftBatch = CPtr<nftnl_batch, nftnl_batch_free>;
using NftUdata = CPtr<nftnl_udata_buf, nftnl_udata_buf_free>;
using NfqHandle = CPtr<nfq_handle, nfq_close>;
using NfqQueue = CPtr<nfq_q_handle, nfq_destroy_queue>;

// libcap: a capability state, and the text cap_to_name returns.
using CapPtr = CPtr<_cap_struct, cap_free>;
using CapText = CPtr<char, cap_free>;

// libc, zlib.
using IfAddrs = CPtr<ifaddrs, freeifaddrs>;
using FilePtr = CPtr<FILE, std::fclose>;
using GzFile = CPtr<gzFile_s, gzclose>;

}  // namespace tollgate
