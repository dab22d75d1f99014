// Package wire hands the SDK's conversions between its plain types and the
// protocol's messages to the SDK's own sub-packages, so that there is one
// set of them (sdk/convert.go). Package sdk cannot export them without
// widening what plugin authors see, and a package below it cannot hold them
// without importing it; so sdk sets Conversions when it is loaded, and a
// sub-package (sdk/plugintest) asserts it to an interface of the
// conversions it uses. The same value hands over the SDK's gRPC server,
// which plugintest serves a plugin with and which plugin authors never
// need (sdk.Serve runs it). A conversion that goes missing fails that assertion
// when the sub-package is loaded, in every one of its tests.
package wire

// Conversions is the SDK's set of conversions, set by package sdk.
var Conversions any

// Storage is the conversions of sdk/storage's types, set by sdk/storage
// when it is loaded, for the Database service's side (sdk/dbplugin and
// sdk/plugintest, which import sdk/storage for its types and so load it
// first).
var Storage any
