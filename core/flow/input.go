package flow

// InputType is the type of a flow input (and of a flow output).
type InputType string

// Input types, as Kestra names them.
const (
	InputString      InputType = "STRING"
	InputInt         InputType = "INT"
	InputFloat       InputType = "FLOAT"
	InputBoolean     InputType = "BOOLEAN"
	InputBool        InputType = "BOOL" // Kestra's newer spelling of BOOLEAN
	InputDateTime    InputType = "DATETIME"
	InputDate        InputType = "DATE"
	InputTime        InputType = "TIME"
	InputDuration    InputType = "DURATION"
	InputJSON        InputType = "JSON"
	InputYAML        InputType = "YAML"
	InputURI         InputType = "URI"
	InputFile        InputType = "FILE"
	InputSelect      InputType = "SELECT"
	InputEnum        InputType = "ENUM"
	InputArray       InputType = "ARRAY"
	InputMultiselect InputType = "MULTISELECT"
	InputSecret      InputType = "SECRET"
	InputEmail       InputType = "EMAIL"
)

// Input is a declared flow input.
type Input struct {
	ID          string
	Type        InputType
	Description string
	DisplayName string
	// Required defaults to true, as in Kestra.
	Required bool
	// Defaults is the default value as written; HasDefaults tells an absent
	// default from an explicit null.
	Defaults    any
	HasDefaults bool

	// Validator is a regular expression a STRING value must match in full.
	Validator string
	// Min and Max bound INT and FLOAT values; MinDuration and MaxDuration
	// bound DURATION values; After and Before bound DATE, TIME and DATETIME
	// values (as written, parsed by the input's type).
	Min, Max                 *float64
	MinLength, MaxLength     *int
	MinDuration, MaxDuration *string
	After, Before            *string
	// Values are the allowed values of ENUM, SELECT and MULTISELECT.
	Values []string
	// ValuesExpr is an expression that renders the allowed values at run
	// time (then Values is empty).
	ValuesExpr       string
	AllowCustomValue bool
	// ItemType is the type of ARRAY items.
	ItemType InputType
	// Extension restricts FILE inputs by file name suffix (".csv").
	Extension string
	// DependsOn names inputs this one's defaults or values expression reads.
	DependsOn []string
	Pos       Pos
}

// inputTypes lists every input type, for messages and the schema.
var inputTypes = []InputType{
	InputString, InputInt, InputFloat, InputBoolean, InputBool, InputDateTime, InputDate,
	InputTime, InputDuration, InputJSON, InputYAML, InputURI, InputFile, InputSelect,
	InputEnum, InputArray, InputMultiselect, InputSecret, InputEmail,
}

// InputTypes returns every input type Kite knows.
func InputTypes() []InputType { return append([]InputType(nil), inputTypes...) }
