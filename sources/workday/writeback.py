"""The two Human_Resources requests a writeback sends to Workday, as documented:

- a work email: `Maintain_Contact_Information_for_Person_Event_Request`, run now and auto-completed,
  one `Email_Address_Data` with the WORK usage type, primary and public; `Do_Not_Replace_All` keeps
  the person's other addresses (HOME)
  (https://community.workday.com/sites/default/files/file-hosting/productionapi/Human_Resources/v40.0/Maintain_Contact_Information.html);
- a username: `Workday_Account_for_Worker_Update` with the new `User_Name`
  (https://community.workday.com/sites/default/files/file-hosting/productionapi/Human_Resources/v40.0/Update_Workday_Account.html).

Each is confirmed by reading the worker back (Get_Workers), never by the answer's status alone.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from provisioner.sources.workday.soap import el as _el
from provisioner.sources.workday.soap import soap_envelope

# Worker field → the element of Get_Workers' answer the read-back compares (connector.worker_record).
WRITABLE = {"work_email": "work_email", "username": "user_id"}
MAINTAIN_CONTACT = "Maintain_Contact_Information_for_Person_Event_Request"
ACCOUNT_UPDATE = "Workday_Account_for_Worker_Update"


def work_email_request(username: str, password: str, version: str, employee_id: str, email: str) -> bytes:
    env, body = soap_envelope(username, password)
    request = _el(body, MAINTAIN_CONTACT, version=version, Add_Only="false")
    params = _el(request, "Business_Process_Parameters")
    _el(params, "Auto_Complete", "true")
    _el(params, "Run_Now", "true")
    data = _el(request, "Maintain_Contact_Information_Data")
    _el(_el(data, "Worker_Reference"), "ID", employee_id, type="Employee_ID")
    _el(data, "Effective_Date", date.today().isoformat())
    contact = _el(data, "Worker_Contact_Information_Data")
    address = _el(contact, "Email_Address_Data", Do_Not_Replace_All="true")
    _el(address, "Email_Address", email)
    usage = _el(address, "Usage_Data", Public="true")
    kind = _el(_el(usage, "Type_Data", Primary="true"), "Type_Reference")
    _el(kind, "ID", "WORK", type="Communication_Usage_Type_ID")
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def username_request(username: str, password: str, version: str, employee_id: str, user_name: str) -> bytes:
    env, body = soap_envelope(username, password)
    request = _el(body, ACCOUNT_UPDATE, version=version)
    reference = _el(_el(request, "Worker_Reference"), "Employee_Reference")
    _el(_el(reference, "Integration_ID_Reference"), "ID", employee_id, System_ID="WD-EMPLID")
    _el(_el(request, "Workday_Account_for_Worker_Data"), "User_Name", user_name)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


REQUESTS = {"work_email": work_email_request, "username": username_request}
